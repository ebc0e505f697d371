#!/usr/bin/env python3
"""Random-weight checkpoints of unusual shapes and formats, written by
`kiln make-checkpoint`, run through `kiln run --reference` and compared with an
independent numpy GPT-2 (float64, full recompute): identical greedy ids, top-5
logits within 1e-5 relative (Kiln hands logits out as float32)."""
import json
import os
import shutil

import numpy as np

import gpt2_numpy
from common import Checks, kiln, kiln_json, parse_args

args = parse_args()
c = Checks()
CASES = [
    # name, make-checkpoint flags, config edits, prompt ids
    ("h3-e96-l5-f16", ["--n-head", 3, "--n-embd", 96, "--n-layer", 5, "--dtype", "f16"], {}, [464, 3290, 11, 290]),
    ("bf16-untied-prefixed-sharded", ["--dtype", "bf16", "--untied", "--prefixed", "--shards", 3], {}, [5, 17, 99]),
    ("odd-vocab-8191", ["--vocab-size", 8191, "--n-positions", 40], {}, [8190, 0, 1234, 7]),
    ("gelu-erf-inverse-layer-scale", ["--activation", "gelu", "--n-inner", 100],
     {"scale_attn_by_inverse_layer_idx": True}, [1, 2, 3, 4, 5, 6, 7]),
    ("single-token-prompt", ["--n-layer", 3, "--n-head", 8], {"scale_attn_weights": False}, [42]),
]
for name, flags, edits, prompt in CASES:
    folder = os.path.join(args.work, name)
    shutil.rmtree(folder, ignore_errors=True)
    kiln(args, "make-checkpoint", "--preset", "tiny", "--seed", 7, "-o", folder, *flags)
    if edits:
        cfg_path = os.path.join(folder, "config.json")
        cfg = json.load(open(cfg_path))
        cfg.update(edits)
        json.dump(cfg, open(cfg_path, "w"), indent=2)
    cfg, weights = gpt2_numpy.load(folder)
    n = 12
    want_ids, want_steps = gpt2_numpy.greedy(cfg, weights, prompt, n)
    for extra in ([], ["--prompt-len", 2]):
        out = kiln_json(args, "run", "--reference", folder, "--prompt-ids", ",".join(map(str, prompt)), "-n", n,
                        "--json", "--top-logits", 5, *extra)
        tag = f"{name} {' '.join(map(str, extra))}".strip()
        c.check(out["ids"] == want_ids, f"{tag}: {n} greedy ids equal numpy's")
        worst = 0.0
        for step, got in enumerate(out["top_logits"]):
            ref = want_steps[step]
            for tok, val in got:
                worst = max(worst, abs(val - ref[tok]) / max(1e-30, float(np.abs(ref).max())))
        c.check(worst <= 1e-5, f"{tag}: top-5 logits within 1e-5 of numpy (worst {worst:.2e})")
c.finish()
