#!/usr/bin/env bash
# Measures the peers on one GPT-2 checkpoint; prints one JSON line per peer/format on stdout:
#   {"peer": "llama.cpp", "format": "f32", "prefill_tok_s": .., "decode_ms_per_token": .., ...}
#   llama.cpp f32 / q8_0 / q4_0 (llama-bench -p 128 -n 128 -t 2), onnxruntime f32, pytorch f32,
#   and {"peer": "membw", "read_gb_s": ..} (streaming read bandwidth, 2 threads).
# usage: bench/peers/run_peers.sh CACHE_DIR HF_DIR        (CACHE_DIR as given to setup_peers.sh)
# env:   THREADS=2 PROMPT=128 GEN=128 REPS=5 (timed runs inside one measurement, each after a warm-up)
#        ROUNDS=1: repeat each measurement; report the best round per number (best-of-N, for busy machines)
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
ROUNDS="${ROUNDS:-1}"
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
# Appends the 1-minute load average at the end of the measurement to a JSON line (a sign of other load).
with_load() { local l; l=$(cut -d' ' -f1 /proc/loadavg); sed "s/}\$/, \"loadavg_1m\": $l}/"; }

# Runs "$@" (which prints one JSON line) ROUNDS times, waiting for idle before each; prints one merged line:
# the best round for each number (max prefill_tok_s / read_gb_s, min decode_ms_per_token), as best-of-N.
measure() {
  local r
  for ((r = 0; r < ROUNDS; r++)); do wait_idle; "$@" | with_load; done | $PY -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
if not rows:
    sys.exit("run_peers: a measurement printed nothing")
out = dict(rows[0])
for key, pick in (("prefill_tok_s", max), ("decode_ms_per_token", min), ("read_gb_s", max)):
    if key in out:
        best = pick(rows, key=lambda r: r[key])
        out[key] = best[key]
        if key + "_std" in best:
            out[key + "_std"] = best[key + "_std"]
out["loadavg_1m"] = max(r["loadavg_1m"] for r in rows)
if len(rows) > 1:
    out["rounds"] = len(rows)
print(json.dumps(out))'
}

membw_once() {
  OMP_NUM_THREADS="$THREADS" OMP_PROC_BIND=spread "${NICE[@]}" "$cache/bin/membw" 1024 10 | $PY -c '
import json, sys
m = json.loads(sys.stdin.read())
print(json.dumps({"peer": "membw", "format": "stream-read", "read_gb_s": m["best_gb_s"],
                  "read_gb_s_median": m["median_gb_s"], "threads": m["threads"], "mib": m["mib"]}))'
}

llama_once() {
  local fmt=$1
  log "llama-bench $fmt"
  "${NICE[@]}" "$bin/llama-bench" -m "$models/model-$fmt.gguf" -p "$PROMPT" -n "$GEN" -t "$THREADS" \
    -r "$REPS" -o json 2>"$models/llama-bench-$fmt.log" > "$models/llama-bench-$fmt.json" \
    || { tail -20 "$models/llama-bench-$fmt.log" >&2; return 1; }
  $PY - "$models/llama-bench-$fmt.json" "$fmt" <<'EOF'
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
}

ort_once() {
  log "onnxruntime f32"
  NODE_PATH="$cache/ort/node_modules" "${NICE[@]}" node "$here/ort_gpt2.js" "$models/model-f32.onnx" \
    --threads "$THREADS" --prompt "$PROMPT" --gen "$GEN" --reps "$REPS"
}

torch_once() {
  log "pytorch f32"
  # Debian's torch calls whatever libblas.so.3 is installed; use OpenBLAS (OpenMP build) when it is there.
  local ob=/usr/lib/x86_64-linux-gnu/openblas-openmp
  LD_LIBRARY_PATH="$([ -e "$ob/libblas.so.3" ] && echo "$ob:")${LD_LIBRARY_PATH:-}" OMP_NUM_THREADS="$THREADS" \
    "${NICE[@]}" $PY "$here/torch_gpt2.py" "$hf" --threads "$THREADS" --prompt "$PROMPT" --gen "$GEN" \
    --reps "$REPS" 2> >(grep -v -e UserWarning -e 'torch.from_numpy' >&2)
}

if want membw; then measure membw_once; fi
if want llama.cpp; then
  log "converting to GGUF in $models"
  "${NICE[@]}" $PY "$here/hf_to_gguf.py" "$hf" "$models" --llama-cpp "$cache/llama.cpp" \
    --llama-quantize "$bin/llama-quantize" --threads "$THREADS" >&2
  for fmt in f32 q8_0 q4_0; do measure llama_once "$fmt"; done
fi
if want onnxruntime; then
  log "writing ONNX graph in $models"
  "${NICE[@]}" $PY "$here/ort_gpt2.py" "$hf" "$models/model-f32.onnx" >&2
  measure ort_once
fi
if want pytorch; then measure torch_once; fi
