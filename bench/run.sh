#!/usr/bin/env bash
# Reproducible CPU benchmark: Kiln against llama.cpp, ONNX Runtime and PyTorch on the same
# random-weight GPT-2 124M, in one run, with the same thread count; prints a table of prefill
# tokens/s (128-token prompt) and decode ms/token (128 tokens after it), the Kiln/peer ratios
# and the memory-bandwidth floor.
#   bench/run.sh                 # everything (first run installs and builds the peers: minutes)
#   THREADS=2 PEERS="membw llama.cpp" bench/run.sh
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
start=$(date +%s%N)
"$kiln" compile "$ckpt" -o "$work/gpt2-124m.kiln" --cpu=native --prompt-len 128 2> "$work/compile.log"
compile_ms=$(( ($(date +%s%N) - start) / 1000000 ))
"$kiln" bench "$work/gpt2-124m.kiln" --prompt-len 128 -n 128 --threads "$THREADS" --repeats 5 --json \
  | sed "s/}\$/, \"compile_ms\": $compile_ms, \"format\": \"f32\"}/" > "$work/kiln.json"
# Quantized pipelines, each benchmarked like f32 (pipelines/*.yaml).
for format in ${KILN_FORMATS:-int8 w8a8 int4-g32 w4a8-g32}; do
  "$kiln" compile "$ckpt" -o "$work/gpt2-124m-$format.kiln" --cpu=native --prompt-len 128 \
    --pipeline "$root/pipelines/$format.yaml" 2>> "$work/compile.log"
  "$kiln" bench "$work/gpt2-124m-$format.kiln" --prompt-len 128 -n 128 --threads "$THREADS" --repeats 5 --json \
    | sed "s/}\$/, \"format\": \"$format\"}/" >> "$work/kiln.json"
done
# Pruned structure (speed depends only on it: the benchmark's weights are random, so
# magnitude pruning stands in for the calibrated pipelines, which give the same shapes).
fused="kiln-fuse-linear-gelu,kiln-fuse-residual-layer-norm,canonicalize,cse"
for entry in "sparse24:kiln-prune{pattern=2:4},$fused" "mlp50:kiln-prune-mlp{score=magnitude refit=false fraction=0.5},$fused"; do
  format="${entry%%:*}"
  "$kiln" compile "$ckpt" -o "$work/gpt2-124m-$format.kiln" --cpu=native --prompt-len 128 --passes "${entry#*:}" \
    2>> "$work/compile.log"
  "$kiln" bench "$work/gpt2-124m-$format.kiln" --prompt-len 128 -n 128 --threads "$THREADS" --repeats 5 --json \
    | sed "s/}\$/, \"format\": \"$format\"}/" >> "$work/kiln.json"
done
"$root/bench/peers/run_peers.sh" "$peers" "$ckpt" > "$work/peers.jsonl"
/usr/bin/python3 "$root/bench/report.py" "$work/kiln.json" "$work/peers.jsonl" "$ckpt/config.json"
