#!/usr/bin/env bash
# The H200 device check: unpack build/gpu-check.tar.xz (bench/gpu/prepare.sh, on a CPU machine)
# and run check.py; its JSON goes to $OUT/gpu-check.json (or the first argument). Under 5 minutes.
#   run: bench/gpu/check.sh   with carry ["build/gpu-check.tar.xz"]
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-${OUT:-$root/build}/gpu-check.json}"
[ -d "$root/build/gpu-check" ] || tar -xJf "$root/build/gpu-check.tar.xz" -C "$root/build"
py=python3
command -v "$py" > /dev/null || py=/usr/bin/python3
timeout 290 "$py" "$root/bench/gpu/check.py" "$root/build/gpu-check" "$out"
echo "wrote $out"
