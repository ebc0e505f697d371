#!/usr/bin/env bash
# Installs every Debian 12 package Kiln needs to build and test. Idempotent: a no-op when all are present.
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache git python3 python3-numpy
  llvm-19-dev llvm-19-tools libmlir-19-dev mlir-19-tools clang-19 lld-19 libclang-rt-19-dev
  libboost-graph-dev libyaml-cpp-dev libgtest-dev nlohmann-json3-dev libicu-dev libopenblas-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  mesa-vulkan-drivers libvulkan-dev spirv-tools
  libcpp-httplib-dev pkgconf
  python3-yaml python3-pytest python3-pip python3-venv python3-setuptools
  jupyter-nbconvert python3-ipykernel python3-matplotlib
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# ONNX Runtime (npm), which runs the onnx backend's artifacts in the tests.
"$(dirname "$0")/setup-ort.sh"
