#!/usr/bin/env python3
"""`kiln eval` reproduces golden.json's perplexity on eval.txt by its method
(32 windows of 256, scoring tokens 1..255), and a model scored against itself
has zero KL and full top-1 agreement."""
import json
import os

from common import MODEL, Checks, kiln_json, parse_args

args = parse_args()
golden = json.load(open(os.path.join(MODEL, "golden.json")))["eval_perplexity"]
text = os.path.join(MODEL, "eval.txt")
c = Checks()
out = kiln_json(args, "eval", MODEL, "--text", text, "--window", 256, "--max-tokens", 8192, "--json")
want = golden["float64"]["perplexity"]
c.check(out["tokens"] == golden["num_scored_tokens"], f"scored {out['tokens']} tokens")
c.check(abs(out["perplexity"] - want) <= 1e-6 * want,
        f"perplexity {out['perplexity']:.6f} vs golden float64 {want:.6f} (float32: {golden['float32']['perplexity']:.6f})")
self = kiln_json(args, "eval", MODEL, "--text", text, "--window", 64, "--max-tokens", 512, "--against", MODEL, "--json")
c.check(abs(self["kl"]) < 1e-12 and self["top1_agreement"] == 1.0, f"self-KL {self['kl']}, top-1 {self['top1_agreement']}")
c.finish()
