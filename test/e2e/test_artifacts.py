#!/usr/bin/env python3
"""Token-exact, like QEfficient's test_causal_lm_models: compiled cpu artifacts
give the reference interpreter's greedy ids exactly and its logits to 1e-3
relative, for the trained model's golden prompts and for random checkpoints of
several shapes and formats, with every kernel variant this CPU supports, and
with prefill lengths of 1, smaller than and larger than the prompt."""
import json
import os
import shutil

from common import MODEL, Checks, cpu_variants, kiln, kiln_json, parse_args, worst_logit


args = parse_args()
c = Checks()
variants = cpu_variants()
print("kernel variants on this CPU:", ", ".join(variants))


def compare(tag, art_dir, ref_model, prompt_flag, prompt, n, ref_extra=(), tolerance=1e-3):
    ref = kiln_json(args, "run", "--reference", ref_model, prompt_flag, prompt, "-n", n, "--json", "--top-logits", 5,
                    *ref_extra)
    for v in variants:
        got = kiln_json(args, "run", art_dir, prompt_flag, prompt, "-n", n, "--json", "--top-logits", 5,
                        "--kernels", v, "--threads", 2)
        c.check(got["prompt_ids"] == ref["prompt_ids"], f"{tag} [{v}]: prompt ids")
        c.check(got["ids"] == ref["ids"], f"{tag} [{v}]: {n} greedy ids equal the reference")
        worst = worst_logit(got, ref)
        c.check(worst <= tolerance, f"{tag} [{v}]: logits within {tolerance:g} relative (worst {worst:.1e})")


golden = json.load(open(os.path.join(MODEL, "golden.json")))
for prompt_len in (1, 4, 16):
    art = os.path.join(args.work, f"tiny-p{prompt_len}")
    kiln(args, "compile", MODEL, "-o", art, "--prompt-len", prompt_len, "--ctx-len", 64)
    for p in golden["prompts"]:
        tag = f"trained p{prompt_len} {p['prompt']!r}"
        compare(tag, art, MODEL, "--prompt", p["prompt"], 24)
        if prompt_len == 4:
            got = kiln_json(args, "run", art, "--prompt", p["prompt"], "-n", 32, "--json")
            c.check(got["ids"] == p["greedy_ids"], f"{tag}: golden.json's 32 ids")

RANDOM = [
    ("h3-e96-l5-f16", ["--n-head", 3, "--n-embd", 96, "--n-layer", 5, "--dtype", "f16"]),
    ("bf16-untied-prefixed-sharded", ["--dtype", "bf16", "--untied", "--prefixed", "--shards", 2]),
    ("odd-vocab-8191-gelu-erf", ["--vocab-size", 8191, "--activation", "gelu", "--n-inner", 100]),
    # Odd panel counts (80 = 5 panels of 16, 240 = 15, 112 = 7, 1009 = 64 with a partial one): the
    # kernels that take panels in pairs end on a single one.
    ("e80-h5-odd-panels", ["--n-embd", 80, "--n-head", 5, "--n-inner", 112, "--vocab-size", 1009]),
]
for name, flags in RANDOM:
    folder = os.path.join(args.work, "ckpt-" + name)
    shutil.rmtree(folder, ignore_errors=True)
    kiln(args, "make-checkpoint", "--preset", "tiny", "--seed", 11, "-o", folder, *flags)
    art = os.path.join(args.work, "art-" + name)
    kiln(args, "compile", folder, "-o", art, "--prompt-len", 8, "--ctx-len", 48)
    compare(name, art, folder, "--prompt-ids", "5,17,99,1000,3,3,42", 16, ("--ctx-len", 48))
    compare(name + " 12-token prompt (2 chunks)", art, folder, "--prompt-ids", ",".join(str(i * 7 + 1) for i in range(12)),
            8, ("--ctx-len", 48))
# Weight formats (the shipped pipelines, and int4 asymmetric with the LM
# head and embedding in int4 too): the compiled artifact against the
# reference interpreter on the same quantized IR (the formats' math is
# shared, so only the order of float operations differs).
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORMATS = [(fmt, ["--pipeline", os.path.join(root, "pipelines", fmt + ".yaml")])
           for fmt in ("int8", "f16", "bf16", "int4-g32", "int4-g128", "w8a8", "w4a8-g32", "kv-int8")]
FORMATS.append(("w4a8-g64-asym", ["--passes", "kiln-quantize-weights{format=int4 group-size=64 symmetric=false "
                                              "include-lm-head=true},kiln-quantize-activations,canonicalize"]))
# Pruned weights: 2:4 sparse f32 runs the packed sparse kernels; a structurally
# pruned MLP runs with its shrunk shapes.
FORMATS.append(("sparse24", ["--passes", "kiln-prune{pattern=2:4},kiln-fuse-linear-gelu,canonicalize"]))
FORMATS.append(("mlp-pruned", ["--passes", "kiln-prune-mlp{score=magnitude refit=false fraction=0.5},"
                                            "kiln-fuse-linear-gelu,canonicalize"]))
# Pruned attention heads: layers keep different head counts (scope=global), so
# every layer's KV caches have their own shape; also with the int8 KV cache.
HEADS = "kiln-prune-heads{score=magnitude refit=false scope=global fraction=0.5}"
FORMATS.append(("heads-pruned", ["--passes", HEADS + ",kiln-fuse-linear-gelu,canonicalize"]))
FORMATS.append(("heads-pruned-kv-int8", ["--passes", HEADS + ",kiln-quantize-kv-cache,canonicalize"]))
FORMATS.append(("w8a8-static", ["--pipeline", os.path.join(root, "pipelines", "w8a8-static.yaml"), "--calibration",
                                os.path.join(MODEL, "calib.txt")]))
FORMATS.append(("int4-g64-asym-lmhead", ["--passes", "kiln-quantize-weights{format=int4 group-size=64 symmetric=false "
                                                     "include-lm-head=true},kiln-fuse-linear-gelu,canonicalize"]))
for fmt, pipeline in FORMATS:
    # int8 activations: the reference rounds its float64 activations, the
    # kernels their float32 ones, so a value at a rounding boundary can land
    # one step (1/127 of the row's range) apart: a wider logit tolerance,
    # the same greedy ids.
    tolerance = 1e-2 if fmt.startswith(("w8a8", "w4a8")) else 1e-3
    for name, model in [("trained", MODEL), ("h3-e96-l5-f16", os.path.join(args.work, "ckpt-h3-e96-l5-f16")),
                        ("bf16-untied-prefixed-sharded", os.path.join(args.work, "ckpt-bf16-untied-prefixed-sharded"))]:
        ir = os.path.join(args.work, f"{fmt}-{name}.mlir")
        art = os.path.join(args.work, f"{fmt}-{name}.kiln")
        kiln(args, "compile", model, *pipeline, "--prompt-len", 4, "--ctx-len", 48, "--emit", "kiln", "-o", ir)
        kiln(args, "compile", model, *pipeline, "--prompt-len", 4, "--ctx-len", 48, "-o", art)
        if name == "trained":
            for p in golden["prompts"]:
                compare(f"{fmt} {name} {p['prompt']!r}", art, ir, "--prompt", p["prompt"], 16, tolerance=tolerance)
        else:
            compare(f"{fmt} {name}", art, ir, "--prompt-ids", "5,17,99,1000,3,3,42", 16, tolerance=tolerance)

# Prefill kernels proper: a 32-token prefill has more rows than a decode block (16), so every
# format's prefill path runs, its blocks of 12 (or 8) rows and a short last block (32 = 2 x 12 + 8);
# a 45-token prompt is a 32-token chunk and a 13-token one.
LONG = ",".join(str((i * 7919) % 50000 + 1) for i in range(45))
for fmt, pipeline in [("f32", [])] + [f for f in FORMATS if f[0] in (
        "int8", "f16", "bf16", "int4-g32", "w8a8", "w4a8-g32", "w4a8-g64-asym", "kv-int8", "sparse24",
        "int4-g64-asym-lmhead")]:
    tolerance = 1e-2 if fmt.startswith(("w8a8", "w4a8")) else 1e-3
    ir = os.path.join(args.work, f"{fmt}-p32.mlir")
    art = os.path.join(args.work, f"{fmt}-p32.kiln")
    kiln(args, "compile", MODEL, *pipeline, "--prompt-len", 32, "--ctx-len", 96, "--emit", "kiln", "-o", ir)
    kiln(args, "compile", MODEL, *pipeline, "--prompt-len", 32, "--ctx-len", 96, "-o", art)
    compare(f"{fmt} 32-token prefill, 45-token prompt", art, ir, "--prompt-ids", LONG, 8, ("--ctx-len", 96),
            tolerance=tolerance)
c.finish()
