#!/usr/bin/env bash
# Sets up, builds and runs every test: GoogleTest units, lit/FileCheck, end-to-end goldens,
# the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer, and every fuzz target.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
ctest --test-dir "$root/build" --output-on-failure -j "$(nproc)"
# The unit tests and the bad-input corpus again, built with ASan + UBSan.
KILN_BUILD_DIR="$root/build-asan" "$root/scripts/build.sh" -DKILN_SANITIZE=ON
ctest --test-dir "$root/build-asan" --output-on-failure -j "$(nproc)" -L "unit|badinput"
# Every libFuzzer target for 20 seconds on its committed corpus (a fixed seed: repeatable).
"$root/scripts/fuzz.sh" --seconds 20 --seed 1
