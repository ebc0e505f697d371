#!/usr/bin/env bash
# Installs the peers Kiln is compared against into a cache folder. Idempotent: a second run only checks.
#   bench/peers/setup_peers.sh [CACHE_DIR]        (default: build/bench-peers in the repo)
# What it installs (CPU only, from Debian's packages and the npm registry):
#   CACHE/llama.cpp/            llama.cpp source, from the git bundle shipped inside npm `node-llama-cpp`
#   CACHE/llama.cpp/build/bin/  llama-bench, llama-quantize, llama-completion (CMake, Release, -march=native, AMX off)
#   CACHE/ort/node_modules/     npm `onnxruntime-node` (CPU binaries ship in the package; CUDA install skipped)
#   CACHE/bin/membw             streaming-read bandwidth probe (bench/peers/membw.c, gcc -O3 -fopenmp)
#   Debian: python3-torch (PyTorch peer), python3-onnx (builds the ORT graph), python3-numpy (+ nodejs, npm if absent)
# Heavy steps run under `nice -n 19` with at most 2 build jobs (JOBS=N to change).
set -euo pipefail

NODE_LLAMA_CPP_VERSION="${NODE_LLAMA_CPP_VERSION:-3.22.1}"
ORT_NODE_VERSION="${ORT_NODE_VERSION:-1.30.0}"
JOBS="${JOBS:-2}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${1:-$repo/build/bench-peers}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
NICE=(nice -n 19)
log() { echo "setup_peers: $*" >&2; }
t0=$SECONDS

# ---- Debian packages -------------------------------------------------------------------------------
# libopenblas0-openmp: Debian's python3-torch calls the system libblas.so.3; without it that is the reference BLAS
# (~25x slower prefill). Installing it makes OpenBLAS the system BLAS alternative (numpy uses it too).
packages=(build-essential cmake ninja-build git python3 python3-numpy python3-torch python3-onnx libopenblas0-openmp)
# node/npm may come from elsewhere than Debian (Debian's nodejs conflicts with another npm): only install when absent.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO "${NICE[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
/usr/bin/python3 -c 'import numpy, torch, onnx' || { log "python3-torch / python3-onnx / numpy not importable"; exit 1; }

# ---- llama.cpp source from node-llama-cpp ---------------------------------------------------------
# node-llama-cpp ships its llama.cpp checkout as llama/gitRelease.bundle; we only unpack the npm tarball
# (`npm pack`), never `npm install` it (its postinstall pulls prebuilt GPU binaries).
src="$cache/llama.cpp"
stamp="$cache/.node-llama-cpp-$NODE_LLAMA_CPP_VERSION"
if [ ! -f "$stamp" ] || [ ! -f "$src/CMakeLists.txt" ]; then
  log "fetching node-llama-cpp@$NODE_LLAMA_CPP_VERSION"
  tmp="$(mktemp -d "$cache/.npmpack.XXXXXX")"
  (cd "$tmp" && "${NICE[@]}" npm pack --silent "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" >/dev/null)
  tar -xzf "$tmp"/node-llama-cpp-*.tgz -C "$tmp" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  rm -rf "$src"
  "${NICE[@]}" git -c advice.detachedHead=false clone -q "$tmp/package/llama/gitRelease.bundle" "$src"
  cp "$tmp/package/llama/llama.cpp.info.json" "$cache/llama.cpp.info.json"
  rm -rf "$tmp"
  touch "$stamp"
fi
log "llama.cpp source: $(git -C "$src" log -1 --format='%h %cs')"

# ---- llama.cpp build ------------------------------------------------------------------------------
# This llama.cpp has no single GGML_AMX switch: AMX kernels (ggml-cpu/amx) compile in whenever the compiler
# defines __AMX_INT8__, i.e. when -march=native runs on an AMX CPU, or with GGML_AMX_TILE/INT8/BF16=ON
# (only read when GGML_NATIVE=OFF). We keep -march=native (GGML_NATIVE=ON) and force AMX off with
# explicit -mno-amx-* flags, which GCC honours over -march=native whatever their order.
bld="$src/build"
noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
want_flags="native-noamx-v1"
if [ ! -f "$bld/CMakeCache.txt" ] || [ "$(cat "$bld/.kiln-flags" 2>/dev/null)" != "$want_flags" ]; then
  rm -rf "$bld"
  log "configuring llama.cpp"
  "${NICE[@]}" cmake -S "$src" -B "$bld" -G Ninja -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DCMAKE_C_FLAGS="$noamx" -DCMAKE_CXX_FLAGS="$noamx" \
    -DGGML_OPENMP=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF -DGGML_RPC=OFF \
    -DGGML_BACKEND_DL=OFF -DGGML_CPU_ALL_VARIANTS=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF >"$cache/llama-cmake.log" 2>&1 \
    || { tail -30 "$cache/llama-cmake.log"; exit 1; }
  echo "$want_flags" > "$bld/.kiln-flags"
fi
log "building llama-bench llama-quantize llama-completion (-j$JOBS)"
"${NICE[@]}" cmake --build "$bld" -j "$JOBS" --target llama-bench llama-quantize llama-completion \
  >"$cache/llama-build.log" 2>&1 || { tail -40 "$cache/llama-build.log"; exit 1; }
if grep -q '__AMX_INT8__' <(echo | gcc -march=native $noamx -dM -E -); then
  log "AMX still enabled by the compiler flags"; exit 1
fi

# ---- ONNX Runtime (node) --------------------------------------------------------------------------
ort="$cache/ort"
mkdir -p "$ort"
if ! (cd "$ort" && node -e "require('onnxruntime-node')" 2>/dev/null) \
   || [ "$(cd "$ort" && node -p "require('onnxruntime-node/package.json').version" 2>/dev/null)" != "$ORT_NODE_VERSION" ]; then
  log "npm install onnxruntime-node@$ORT_NODE_VERSION"
  [ -f "$ort/package.json" ] || echo '{"name":"kiln-bench-peers-ort","private":true}' > "$ort/package.json"
  (cd "$ort" && "${NICE[@]}" npm install --no-audit --no-fund --silent \
     "onnxruntime-node@$ORT_NODE_VERSION" --onnxruntime-node-install-cuda=skip)
fi
(cd "$ort" && node -e "const o=require('onnxruntime-node'); if(!o.InferenceSession) process.exit(1)")

# ---- memory bandwidth probe -----------------------------------------------------------------------
mkdir -p "$cache/bin"
if [ ! -x "$cache/bin/membw" ] || [ "$here/membw.c" -nt "$cache/bin/membw" ]; then
  "${NICE[@]}" gcc -O3 -march=native -fopenmp -o "$cache/bin/membw" "$here/membw.c"
fi

log "done in $((SECONDS - t0)) s: $cache"
