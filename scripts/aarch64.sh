#!/usr/bin/env bash
# Runs the AArch64 build of the kiln driver under qemu-aarch64, so artifacts compiled with
# `kiln compile --target-triple=aarch64-linux-gnu` execute their NEON kernels on this machine:
#   scripts/aarch64.sh kiln run ARTIFACT --prompt "..." --print-ids
#   scripts/aarch64.sh --setup        (only set up)
# First use sets up, idempotently: Debian's g++-aarch64-linux-gnu and qemu-user; the arm64
# libraries the runtime links (yaml-cpp, ICU, cpp-httplib and its dependencies), downloaded
# with apt and unpacked into build-aarch64/sysroot (not installed: their -dev packages would
# replace the host's); the runtime and the driver cross-built into build-aarch64/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${KILN_AARCH64_BUILD_DIR:-$root/build-aarch64}"
sysroot="$out/sysroot"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo

setup() {
  local missing=()
  for p in g++-aarch64-linux-gnu qemu-user; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "aarch64: installing ${missing[*]}" >&2
    $SUDO apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  if [ ! -f "$sysroot/.ready" ]; then
    echo "aarch64: unpacking the arm64 libraries into $sysroot" >&2
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      $SUDO dpkg --add-architecture arm64
    fi
    $SUDO apt-get update -q >&2
    rm -rf "$sysroot" && mkdir -p "$sysroot/debs"
    (cd "$sysroot/debs" && apt-get download libyaml-cpp0.7:arm64 libicu72:arm64 libcpp-httplib0.11:arm64 \
      libssl3:arm64 libssl-dev:arm64 zlib1g:arm64 libbrotli1:arm64 >&2)
    for d in "$sysroot"/debs/*.deb; do dpkg -x "$d" "$sysroot"; done
    local lib="$sysroot/usr/lib/aarch64-linux-gnu"
    ln -sf libyaml-cpp.so.0.7 "$lib/libyaml-cpp.so"
    ln -sf libicuuc.so.72 "$lib/libicuuc.so"
    ln -sf libcpp-httplib.so.0.11 "$lib/libcpp-httplib.so"
    # The other headers are the same for every architecture: the host's (scripts/setup.sh installs
    # them); OpenSSL's configuration headers are per architecture (from libssl-dev:arm64, above).
    mkdir -p "$sysroot/usr/include"
    for h in yaml-cpp unicode nlohmann httplib.h; do ln -sfn "/usr/include/$h" "$sysroot/usr/include/$h"; done
    touch "$sysroot/.ready"
  fi
  mkdir -p "$out"
  if [ ! -f "$out/build.ninja" ]; then
    cmake -S "$root" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_RUNTIME_ONLY=ON \
      -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" -DKILN_AARCH64_SYSROOT="$sysroot" > "$out/configure.log" 2>&1 ||
      { cat "$out/configure.log" >&2; exit 1; }
  fi
  cmake --build "$out" --target kiln -j "${KILN_JOBS:-$(nproc)}" > "$out/build.log" 2>&1 ||
    { tail -30 "$out/build.log" >&2; exit 1; }
}

case "${1:-}" in
  --setup) setup; echo "aarch64: $out/bin/kiln" ;;
  kiln)
    shift
    setup
    # qemu-aarch64 finds the loader and libc under QEMU_LD_PREFIX; the rest on LD_LIBRARY_PATH.
    QEMU_LD_PREFIX=/usr/aarch64-linux-gnu LD_LIBRARY_PATH="$sysroot/usr/lib/aarch64-linux-gnu:$sysroot/lib/aarch64-linux-gnu:$out/lib" \
      exec qemu-aarch64 "$out/bin/kiln" "$@" ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
