#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz (clang-19, ASan + UBSan) and runs each for a bounded
# time on its committed corpus (test/fuzz/corpus/TARGET, regression inputs included) plus what
# earlier runs found (build-fuzz/corpus/TARGET). Exits non-zero on any crash, leak, timeout or
# sanitizer report; the input that caused it is left in build-fuzz/findings/.
#   scripts/fuzz.sh [--seconds N | --minutes N] [--seed S] [TARGET ...]   (default: 60 s each, all)
# --seed makes a run repeatable (CI passes one); without it each run explores afresh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds=60
seed=()
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --minutes) seconds=$(($2 * 60)); shift 2 ;;
    --seed) seed=(-seed="$2"); shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(safetensors config index adapter tokenizer manifest serve_request pipeline passes)
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: no target '$t' (targets: ${all[*]})" >&2; exit 2; }
done

"$root/scripts/setup.sh" > /dev/null # clang-19 and libclang-rt-19-dev (libFuzzer) among the packages
[ -x "$root/build/bin/kiln" ] || "$root/scripts/build.sh" # the seeds' artifact is compiled by kiln
out="${KILN_FUZZ_BUILD_DIR:-$root/build-fuzz}"
cmake -S "$root/test/fuzz" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 -DKILN_MAIN_BUILD="$root/build" > "$out.configure.log" 2>&1 ||
  { cat "$out.configure.log"; exit 1; }
cmake --build "$out" > "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }

# What the targets open beside their input: a compiled artifact, a sharded checkpoint, an adapter.
fixtures="$out/fixtures"
if [ ! -f "$fixtures/ready" ]; then
  rm -rf "$fixtures" && mkdir -p "$fixtures"
  kiln="$root/build/bin/kiln"
  "$kiln" compile "$root/models/kjv-gpt2-tiny" --ctx-len 32 --prompt-len 4 -o "$fixtures/artifact" > /dev/null
  "$kiln" make-checkpoint --preset tiny --n-layer 1 --n-embd 16 --n-head 2 --vocab-size 300 --n-positions 16 \
    --shards 2 --no-tokenizer --seed 1 -o "$fixtures/sharded" > /dev/null
  /usr/bin/python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import peft_numpy
peft_numpy.write_adapter(sys.argv[2], sys.argv[3], suffixes=('attn.c_attn', 'mlp.c_fc'))" \
    "$root/test/e2e" "$fixtures/adapter" "$root/models/kjv-gpt2-tiny"
  touch "$fixtures/ready"
fi
export KILN_FUZZ_MODEL="$root/models/kjv-gpt2-tiny" KILN_FUZZ_ARTIFACT="$fixtures/artifact" \
  KILN_FUZZ_SHARDED_MODEL="$fixtures/sharded" KILN_FUZZ_ADAPTER="$fixtures/adapter"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

mkdir -p "$out/findings"
failed=0
printf '%-14s %8s %10s %8s %8s  %s\n' target seconds execs exec/s edges result
for t in "${targets[@]}"; do
  corpus="$out/corpus/$t" && mkdir -p "$corpus"
  dict=()
  [ -f "$root/test/fuzz/dict/$t.dict" ] && dict=(-dict="$root/test/fuzz/dict/$t.dict")
  log="$out/$t.log"
  set +e
  (cd "$out" && "$out/fuzz_$t" "${dict[@]}" "${seed[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/findings/$t-" \
    "$corpus" "$root/test/fuzz/corpus/$t") > "$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  edges=$(grep -ao 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  result=clean
  if [ $rc -ne 0 ]; then
    result="FAILED (exit $rc; log $log)"
    failed=1
  fi
  printf '%-14s %8s %10s %8s %8s  %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${edges:-?}" "$result"
  [ $rc -eq 0 ] || grep -aE "ERROR|SUMMARY|Test unit written|==[0-9]+==|terminate called|what\(\)" "$log" | head -12 | sed 's/^/    /'
done
exit $failed
