#!/usr/bin/env bash
# Configures (once) and builds Kiln into build/. Extra arguments go to the CMake configure step.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${KILN_BUILD_DIR:-$root/build}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
fi
# KILN_BUILD_TARGET: build that target (and what it needs) only.
cmake --build "$build" -j "${KILN_JOBS:-$(nproc)}" ${KILN_BUILD_TARGET:+--target "$KILN_BUILD_TARGET"}
