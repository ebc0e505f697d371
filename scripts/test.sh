#!/usr/bin/env bash
# Sets up, builds and runs every test: GoogleTest units, lit/FileCheck, end-to-end goldens
# (AArch64 artifacts under qemu-aarch64 among them),
# the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer, the runtime's thread
# test under ThreadSanitizer, and every fuzz target.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
# The AArch64 runtime and driver, cross-built (e2e.aarch64 runs artifacts with them under qemu).
"$root/scripts/aarch64.sh" --setup
ctest --test-dir "$root/build" --output-on-failure -j "$(nproc)"
# The unit tests and the bad-input corpus again, built with ASan + UBSan.
KILN_BUILD_DIR="$root/build-asan" "$root/scripts/build.sh" -DKILN_SANITIZE=ON
ctest --test-dir "$root/build-asan" --output-on-failure -j "$(nproc)" -L "unit|badinput"
# The runtime's thread test under ThreadSanitizer: only the runtime and that test are built
# (no MLIR); its artifact is compiled by build/'s kiln.
KILN_BUILD_DIR="$root/build-tsan" KILN_BUILD_TARGET=RuntimeThreadTest "$root/scripts/build.sh" \
  -DKILN_SANITIZE=thread -DKILN_TEST_COMPILER_BIN_DIR="$root/build/bin"
TSAN_OPTIONS="halt_on_error=1" ctest --test-dir "$root/build-tsan" --output-on-failure -L tsan
# Every libFuzzer target for 20 seconds on its committed corpus (a fixed seed: repeatable).
"$root/scripts/fuzz.sh" --seconds 20 --seed 1
