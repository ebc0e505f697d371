#!/usr/bin/env bash
# The main job: set up, build, and generate text from the trained GPT-2 shipped in models/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
"$root/build/bin/kiln" run --reference "$root/models/kjv-gpt2-tiny" \
  --prompt "${KILN_PROMPT:-And God said}" -n "${KILN_TOKENS:-48}" \
  --temperature 0.8 --top-k 40 --seed 7 --stats
