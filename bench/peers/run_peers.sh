#!/usr/bin/env bash
# Measures the peers on one GPT-2 checkpoint; prints one JSON line per peer/format on stdout:
#   {"peer": "llama.cpp", "format": "f32", "prefill_tok_s": .., "decode_ms_per_token": .., ...}
#   llama.cpp f32 / q8_0 / q4_0 (llama-bench -p 128 -n 128 -t 2), onnxruntime f32, pytorch f32,
#   and {"peer": "membw", "read_gb_s": ..} (streaming read bandwidth, 2 threads).
# usage: bench/peers/run_peers.sh CACHE_DIR HF_DIR        (CACHE_DIR as given to setup_peers.sh)
# env:   THREADS=2 PROMPT=128 GEN=128 REPS=5
#        PEERS="membw llama.cpp onnxruntime pytorch"   (a subset to run)
#        WAIT_IDLE=S: before each measurement wait up to S seconds for the machine to be idle
#                     (other processes < 10% of the CPUs over 2 s); 0 = don't wait (default)
# Converted models (GGUF, ONNX) go to CACHE_DIR/models/NAME-HASH/ and are reused while up to date.
# Progress and tool logs go to stderr. Everything runs under `nice -n 19`.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 CACHE_DIR HF_DIR" >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$(cd "$1" && pwd)"
hf="$(cd "$2" && pwd)"
THREADS="${THREADS:-2}" PROMPT="${PROMPT:-128}" GEN="${GEN:-128}" REPS="${REPS:-5}" WAIT_IDLE="${WAIT_IDLE:-0}"
PEERS="${PEERS:-membw llama.cpp onnxruntime pytorch}"
PY=/usr/bin/python3
NICE=(nice -n 19)
bin="$cache/llama.cpp/build/bin"
for f in "$bin/llama-bench" "$cache/bin/membw" "$cache/ort/node_modules/onnxruntime-node/package.json"; do
  [ -e "$f" ] || { echo "run_peers: $f missing: run bench/peers/setup_peers.sh $cache" >&2; exit 1; }
done
[ -f "$hf/config.json" ] || { echo "run_peers: $hf: no config.json" >&2; exit 1; }
models="$cache/models/$(basename "$hf")-$(printf %s "$hf" | sha1sum | cut -c1-8)"
mkdir -p "$models"
log() { echo "run_peers: $*" >&2; }
want() { [[ " $PEERS " == *" $1 "* ]]; }

# Busy share of the CPUs over 2 s, in percent, from /proc/stat (0 when this shell is the only user).
busy_pct() {
  local a b
  read -r _ a1 a2 a3 a4 a5 a6 a7 _ < /proc/stat; a=$((a1 + a2 + a3 + a4 + a5 + a6 + a7)); local ia=$((a4 + a5))
  sleep 2
  read -r _ b1 b2 b3 b4 b5 b6 b7 _ < /proc/stat; b=$((b1 + b2 + b3 + b4 + b5 + b6 + b7)); local ib=$((b4 + b5))
  echo $(( (100 * ((b - a) - (ib - ia))) / ((b - a) > 0 ? (b - a) : 1) ))
}
wait_idle() {
  ((WAIT_IDLE > 0)) || return 0
  local t0=$SECONDS p
  while :; do
    p=$(busy_pct)
    ((p < 10)) && return 0
    ((SECONDS - t0 >= WAIT_IDLE)) && { log "machine still ${p}% busy after ${WAIT_IDLE}s; measuring anyway"; return 0; }
  done
}
# Appends the 1-minute load average at the end of the measurement to a JSON line.
with_load() { local l; l=$(cut -d' ' -f1 /proc/loadavg); sed "s/}\$/, \"loadavg_1m\": $l}/"; }

# ---- memory bandwidth ----
if want membw; then
  wait_idle
  OMP_NUM_THREADS="$THREADS" OMP_PROC_BIND=spread "${NICE[@]}" "$cache/bin/membw" 1024 10 | $PY -c '
import json, sys
m = json.loads(sys.stdin.read())
print(json.dumps({"peer": "membw", "format": "stream-read", "read_gb_s": m["best_gb_s"],
                  "read_gb_s_median": m["median_gb_s"], "threads": m["threads"], "mib": m["mib"]}))' | with_load
fi

# ---- llama.cpp ----
if want llama.cpp; then
  log "converting to GGUF in $models"
  "${NICE[@]}" $PY "$here/hf_to_gguf.py" "$hf" "$models" --llama-cpp "$cache/llama.cpp" \
    --llama-quantize "$bin/llama-quantize" --threads "$THREADS" >&2
  for fmt in f32 q8_0 q4_0; do
    wait_idle
    log "llama-bench $fmt"
    "${NICE[@]}" "$bin/llama-bench" -m "$models/model-$fmt.gguf" -p "$PROMPT" -n "$GEN" -t "$THREADS" \
      -r "$REPS" -o json 2>"$models/llama-bench-$fmt.log" > "$models/llama-bench-$fmt.json" \
      || { tail -20 "$models/llama-bench-$fmt.log" >&2; exit 1; }
    $PY - "$models/llama-bench-$fmt.json" "$fmt" <<'EOF' | with_load
import json, sys
rows, fmt = json.load(open(sys.argv[1])), sys.argv[2]
pp = next(r for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0)
tg = next(r for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0)
print(json.dumps({
    "peer": "llama.cpp", "format": fmt,
    "prefill_tok_s": round(pp["avg_ts"], 2), "decode_ms_per_token": round(1000.0 / tg["avg_ts"], 3),
    "prefill_tok_s_std": round(pp["stddev_ts"], 2),
    "decode_ms_per_token_std": round(1000.0 * tg["stddev_ts"] / tg["avg_ts"] ** 2, 3),
    "n_prompt": pp["n_prompt"], "n_gen": tg["n_gen"], "threads": pp["n_threads"], "reps": len(pp["samples_ns"]),
    "model_bytes": pp["model_size"], "version": pp["build_commit"]}))
EOF
  done
fi

# ---- ONNX Runtime ----
if want onnxruntime; then
  log "writing ONNX graph in $models"
  "${NICE[@]}" $PY "$here/ort_gpt2.py" "$hf" "$models/model-f32.onnx" >&2
  wait_idle
  log "onnxruntime f32"
  NODE_PATH="$cache/ort/node_modules" "${NICE[@]}" node "$here/ort_gpt2.js" "$models/model-f32.onnx" \
    --threads "$THREADS" --prompt "$PROMPT" --gen "$GEN" --reps "$REPS" | with_load
fi

# ---- PyTorch ----
if want pytorch; then
  wait_idle
  log "pytorch f32"
  # Debian's torch calls whatever libblas.so.3 is installed; use OpenBLAS (OpenMP build) when it is there.
  ob=/usr/lib/x86_64-linux-gnu/openblas-openmp
  LD_LIBRARY_PATH="$([ -e "$ob/libblas.so.3" ] && echo "$ob:")${LD_LIBRARY_PATH:-}" OMP_NUM_THREADS="$THREADS" \
    "${NICE[@]}" $PY "$here/torch_gpt2.py" "$hf" --threads "$THREADS" --prompt "$PROMPT" --gen "$GEN" \
    --reps "$REPS" 2> >(grep -v -e UserWarning -e 'torch.from_numpy' >&2) | with_load
fi
