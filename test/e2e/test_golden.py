#!/usr/bin/env python3
"""`kiln run --reference` on the shipped trained model reproduces golden.json's
greedy ids and top-5 logits (1e-4 relative), with the prompt prefilled in one
chunk, in chunks of 2, and padded into a larger prefill."""
import json
import os

from common import MODEL, Checks, kiln_json, parse_args

args = parse_args()
golden = json.load(open(os.path.join(MODEL, "golden.json")))
c = Checks()
for p in golden["prompts"]:
    for extra in ([], ["--prompt-len", "2"], ["--prompt-len", "64", "--ctx-len", "128"]):
        out = kiln_json(args, "run", "--reference", MODEL, "--prompt", p["prompt"], "-n", 32, "--json",
                        "--top-logits", 5, *extra)
        tag = f"{p['prompt']!r} {' '.join(extra) or 'exact prefill'}"
        c.check(out["prompt_ids"] == p["input_ids"], f"{tag}: prompt ids")
        c.check(out["ids"] == p["greedy_ids"], f"{tag}: 32 greedy ids")
        worst = 0.0
        for step, want in enumerate(p["top5_per_step"]):
            got = out["top_logits"][step]
            c.check([g[0] for g in got] == [w[0] for w in want], f"{tag}: step {step} top-5 ids")
            worst = max(worst, max(abs(g[1] - w[1]) / abs(w[1]) for g, w in zip(got, want)))
        c.check(worst <= 1e-4, f"{tag}: top-5 logits within 1e-4 relative (worst {worst:.2e})")
c.finish()
