#!/usr/bin/env bash
# Installs ONNX Runtime for Node.js (npm onnxruntime-node, CPU binaries inside the package) into
# build/ort (or $KILN_ORT_DIR): the onnx backend's artifacts are checked in it. Also the official
# openai client for the kiln serve test. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${ORT_NODE_VERSION:-1.30.0}"
dir="${KILN_ORT_DIR:-$root/build/ort}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  # Debian's nodejs and npm, only when no node is installed (another npm conflicts with Debian's).
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi
have="$(cd "$dir" 2>/dev/null && node -p "require('onnxruntime-node/package.json').version" 2>/dev/null || true)"
if [ "$have" != "$version" ]; then
  echo "setup: npm install onnxruntime-node@$version into $dir"
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"name":"kiln-ort","private":true}' > "$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --silent "onnxruntime-node@$version" --onnxruntime-node-install-cuda=skip)
fi
# The official OpenAI client, which the kiln serve test points at /v1 (CommonJS in v4).
openai_version="${OPENAI_NODE_VERSION:-4.104.0}"
have_openai="$(cd "$dir" && node -p "require('./node_modules/openai/package.json').version" 2>/dev/null || true)"
if [ "$have_openai" != "$openai_version" ]; then
  echo "setup: npm install openai@$openai_version into $dir"
  (cd "$dir" && npm install --no-audit --no-fund --silent "openai@$openai_version")
fi
(cd "$dir" && node -e "if (!require('openai').OpenAI) process.exit(1)") \
  || { echo "setup: the openai npm client in $dir does not load" >&2; exit 1; }
(cd "$dir" && node -e "if (!require('onnxruntime-node').InferenceSession) process.exit(1)") \
  || { echo "setup: onnxruntime-node in $dir does not load" >&2; exit 1; }
