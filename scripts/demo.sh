#!/usr/bin/env bash
# The main job: set up, build, compile the trained GPT-2 shipped in models/ ahead of time
# for this CPU, and generate text from the compiled artifact.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
model="${KILN_MODEL:-$root/models/kjv-gpt2-tiny}"
artifact="$root/build/artifacts/$(basename "$model")"
"$root/build/bin/kiln" compile "$model" -o "$artifact" --cpu=native
"$root/build/bin/kiln" run "$artifact" --prompt "${KILN_PROMPT:-And God said}" -n "${KILN_TOKENS:-64}" \
  --temperature 0.8 --top-k 40 --seed 7 --stats
