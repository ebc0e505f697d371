#!/usr/bin/env bash
# Prepares the H200 device check on a CPU machine: build/gpu-check.tar.xz, which `run` carries to
# the device machine (64 MiB at most), and bench/gpu/check.sh unpacks and runs there. Nothing is
# compiled on the device: it gets the MLIR-free `kiln` with the runtime (and the ICU / yaml-cpp
# libraries it links, in case that machine lacks them), cuda artifacts of small models with the
# reference interpreter's outputs for their prompts, and GPT-2 124M artifacts without weights.bin
# (check.sh regenerates the random checkpoint with kiln make-checkpoint and repacks it with
# pack_weights.py; the runtime checks the result against the manifest's checksum).
#   bench/gpu/prepare.sh            (after scripts/build.sh; needs the CUDA toolkit for ptxas)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
kiln="$root/build/bin/kiln"
out="$root/build/gpu-check"
py=/usr/bin/python3
rm -rf "$out" && mkdir -p "$out"/{bin,lib,syslib,art,ref}
cp "$kiln" "$out/bin/"
for l in libkiln_runtime.so libKilnCheckpoint.so libKilnDriverSupport.so; do cp "$root/build/lib/$l" "$out/lib/"; done
for l in $(ldd "$kiln" | awk '/=> \// {print $3}' | grep -E 'libicu|libyaml'); do cp -L "$l" "$out/syslib/"; done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tiny="$root/models/kjv-gpt2-tiny"

# name model pipeline prompt_len ctx_len [cuda options]: the IR after the pipeline and its cuda artifact.
artifact() {
  local name=$1 model=$2 pipeline=$3 plen=$4 ctx=$5
  shift 5
  "$kiln" compile "$model" --pipeline "$root/pipelines/$pipeline.yaml" --calibration "$tiny/calib.txt" \
    --prompt-len "$plen" --ctx-len "$ctx" --emit kiln -o "$work/$name.mlir"
  "$kiln" compile "$work/$name.mlir" --passes canonicalize --target cuda "$@" -o "$out/art/$name" 2>/dev/null
  rm -f "$out/art/$name/vocab.json" "$out/art/$name/merges.txt" # prompts are ids
}
# name prompt-ids n: the reference's ids and top-5 logits.
reference() {
  "$kiln" run --reference "$work/$1.mlir" --prompt-ids "$2" -n "$3" --json --top-logits 5 | tail -1 > "$out/ref/$1.$4.json"
}

"$kiln" make-checkpoint --preset tiny --seed 5 --n-head 3 --n-embd 96 --n-layer 5 --vocab-size 8191 --untied \
  --no-tokenizer -o "$work/odd" > /dev/null
golden=$("$py" -c "import json; print(' '.join(','.join(map(str, p['input_ids'])) for p in json.load(open('$tiny/golden.json'))['prompts']))")
for spec in "trained-int8 $tiny int8 4 64" "trained-f16 $tiny f16 4 64" "odd-f32 $work/odd f32 8 48" \
            "odd-int4 $work/odd int4-g32 8 48"; do
  set -- $spec
  artifact "$1" "$2" "$3" "$4" "$5"
  i=0
  if [ "${1#trained}" != "$1" ]; then prompts="$golden"; else prompts="5,17,99,1000,3,3,42 1,8,15,22,29,36,43,50,57,64,71,78"; fi
  for p in $prompts; do reference "$1" "$p" 24 $i; i=$((i + 1)); done
done

# GPT-2 124M (random, seed 11): f32 and f16 at prompt_len 128, f16 at 1024 for the long prefill;
# weights.bin left out (regenerated on the device).
"$kiln" make-checkpoint --preset gpt2 --seed 11 --no-tokenizer -o "$work/g124" > /dev/null
for spec in "g124-f32 f32 128" "g124-f16 f16 128" "g124-f16-p1024 f16 1024"; do
  set -- $spec
  artifact "$1" "$work/g124" "$2" "$3" 1024
  rm "$out/art/$1/weights.bin"
done
# Their references from the same pipelines at prompt_len 8 (padding changes no logit; the
# interpreter's cost grows with the prefill's slots).
for fmt in f32 f16; do
  "$kiln" compile "$work/g124" --pipeline "$root/pipelines/$fmt.yaml" --prompt-len 8 --ctx-len 64 --emit kiln \
    -o "$work/g124-$fmt.mlir"
  reference "g124-$fmt" "818,262,3726,286,4881" 16 0
  reference "g124-$fmt" "40,1842,345,11,3290,13" 16 1
done
tar -cJf "$root/build/gpu-check.tar.xz" -C "$root/build" gpu-check
echo "wrote build/gpu-check.tar.xz ($(du -h "$root/build/gpu-check.tar.xz" | cut -f1); carry it with: run carry=[\"build/gpu-check.tar.xz\"])"
