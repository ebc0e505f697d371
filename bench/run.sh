#!/usr/bin/env bash
# Reproducible CPU benchmark: Kiln against llama.cpp, ONNX Runtime and PyTorch on the same
# random-weight GPT-2 124M, in one run, with the same thread count; prints a table of prefill
# tokens/s (128-token prompt) and decode ms/token (128 tokens after it), the Kiln/peer ratios
# and the memory-bandwidth floor.
#   bench/run.sh                 # everything (first run installs and builds the peers: minutes)
#   THREADS=2 PEERS="membw llama.cpp" bench/run.sh
#   KILN_ROUNDS=3: each Kiln artifact is measured in that many separate processes, keeping
#   the best prefill and decode (a process's memory placement can make decode on this
#   kind of VM bimodal, ~7.5 or ~10.8 ms for the same f32 artifact).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${KILN_BENCH_DIR:-$root/build/bench}"
peers="${KILN_PEERS_DIR:-$root/build/bench-peers}"
export THREADS="${THREADS:-2}"
mkdir -p "$work"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" > "$work/build.log"
"$root/bench/peers/setup_peers.sh" "$peers" >&2
kiln="$root/build/bin/kiln"
ckpt="$work/gpt2-124m"
[ -f "$ckpt/model.safetensors" ] || "$kiln" make-checkpoint --preset gpt2 --seed 1 -o "$ckpt"
# kiln_bench ARTIFACT FORMAT [EXTRA_JSON]: best of KILN_ROUNDS processes, one JSON line.
kiln_bench() {
  for _ in $(seq "${KILN_ROUNDS:-3}"); do
    "$kiln" bench "$1" --prompt-len 128 -n 128 --threads "$THREADS" --repeats 5 --json
  done | /usr/bin/python3 -c '
import json, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
best = min(runs, key=lambda r: r["decode_ms_per_token"])
best["prefill_tok_s"] = max(r["prefill_tok_s"] for r in runs)
best["rounds"] = len(runs)
best.update(json.loads(sys.argv[1]))
print(json.dumps(best))' "{\"format\": \"$2\"${3:+, $3}}"
}
start=$(date +%s%N)
"$kiln" compile "$ckpt" -o "$work/gpt2-124m.kiln" --cpu=native --prompt-len 128 2> "$work/compile.log"
compile_ms=$(( ($(date +%s%N) - start) / 1000000 ))
kiln_bench "$work/gpt2-124m.kiln" f32 "\"compile_ms\": $compile_ms" > "$work/kiln.json"
# Quantized pipelines, each benchmarked like f32 (pipelines/*.yaml).
for format in ${KILN_FORMATS:-int8 w8a8 int4-g32 w4a8-g32}; do
  "$kiln" compile "$ckpt" -o "$work/gpt2-124m-$format.kiln" --cpu=native --prompt-len 128 \
    --pipeline "$root/pipelines/$format.yaml" 2>> "$work/compile.log"
  kiln_bench "$work/gpt2-124m-$format.kiln" "$format" >> "$work/kiln.json"
done
# Pruned structure (speed depends only on it: the benchmark's weights are random, so
# magnitude pruning stands in for the calibrated pipelines, which give the same shapes).
fused="kiln-fuse-linear-gelu,kiln-fuse-residual-layer-norm,canonicalize,cse"
for entry in "sparse24:kiln-prune{pattern=2:4},$fused" "mlp50:kiln-prune-mlp{score=magnitude refit=false fraction=0.5},$fused"; do
  format="${entry%%:*}"
  "$kiln" compile "$ckpt" -o "$work/gpt2-124m-$format.kiln" --cpu=native --prompt-len 128 --passes "${entry#*:}" \
    2>> "$work/compile.log"
  kiln_bench "$work/gpt2-124m-$format.kiln" "$format" >> "$work/kiln.json"
done
"$root/bench/peers/run_peers.sh" "$peers" "$ckpt" > "$work/peers.jsonl"
/usr/bin/python3 "$root/bench/report.py" "$work/kiln.json" "$work/peers.jsonl" "$ckpt/config.json"
