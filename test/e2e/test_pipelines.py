#!/usr/bin/env python3
"""Lossless pipelines stay token-exact: the kiln IR after each pipeline, run by
the reference interpreter, gives golden.json's ids and (in f64) the same logits
as the unfused import, and the compiled artifacts of each give the same ids."""
import json
import os

from common import MODEL, Checks, kiln, kiln_json, parse_args

args = parse_args()
c = Checks()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
golden = json.load(open(os.path.join(MODEL, "golden.json")))
PIPELINES = {
    "unfused (--passes '')": ["--passes", ""],
    "default": [],
    "pipelines/f32.yaml": ["--pipeline", os.path.join(root, "pipelines", "f32.yaml")],
    "fusion one at a time": ["--passes", "kiln-fuse-residual-layer-norm,cse,kiln-fuse-linear-gelu"],
}
base = None
for name, flags in PIPELINES.items():
    tag = name.split(" ")[0].replace("/", "_")
    ir = os.path.join(args.work, f"pipeline-{tag}.mlir")
    kiln(args, "compile", MODEL, "--emit", "kiln", "--prompt-len", 6, "--ctx-len", 64, "-o", ir, *flags)
    for p in golden["prompts"]:
        out = kiln_json(args, "run", "--reference", ir, "--prompt", p["prompt"], "-n", 32, "--json", "--top-logits", 5)
        c.check(out["ids"] == p["greedy_ids"], f"{name} {p['prompt']!r}: reference on the pipeline's IR gives golden ids")
        if base is None:
            base = {}
        key = p["prompt"]
        if key not in base:
            base[key] = out["top_logits"]
        else:
            worst = max(abs(g[1] - b[1]) for gs, bs in zip(out["top_logits"], base[key]) for g, b in zip(gs, bs))
            c.check(worst < 1e-4, f"{name} {p['prompt']!r}: logits equal the unfused IR's (worst {worst:.1e})")
    art = os.path.join(args.work, f"pipeline-{tag}.kiln")
    kiln(args, "compile", MODEL, "--prompt-len", 4, "--ctx-len", 64, "-o", art, *flags)
    for p in golden["prompts"]:
        out = kiln_json(args, "run", art, "--prompt", p["prompt"], "-n", 32, "--json")
        c.check(out["ids"] == p["greedy_ids"], f"{name} {p['prompt']!r}: compiled artifact gives golden ids")
c.finish()
