#!/usr/bin/env python3
"""Accuracy of every shipped weight-format pipeline on the trained model's
held-out text, against its f32 model, at the bars of the pass-library issue
(--window 256 --max-tokens 8192): f32 dppl <= 0.001% and KL 0; f16 KL <= 1e-6;
bf16 KL <= 2e-5; int8 dppl <= 0.2% and KL <= 1e-4; int4-g32 dppl <= 1% and
KL <= 1.5e-2; int4-g128 dppl <= 1.5% and KL <= 2.5e-2; w8a8 (dynamic, and static
calibrated on calib.txt) dppl <= 0.3% and KL <= 5e-4; w4a8-g32 (int4-g32 weights with the
LM head, int8 activations) at int4-g32's bars. Writes the measured
table to WORK/accuracy.json. f16 must also stay token-exact on the golden prompts."""
import json
import os

from common import MODEL, Checks, kiln, kiln_json, parse_args

args = parse_args()
c = Checks()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
text = os.path.join(MODEL, "eval.txt")
BARS = {  # pipeline: (max relative perplexity change, max KL)
    "f32": (1e-5, 1e-12),
    "f16": (None, 1e-6),
    "bf16": (None, 2e-5),
    "int8": (2e-3, 1e-4),
    "int4-g32": (1e-2, 1.5e-2),
    "int4-g128": (1.5e-2, 2.5e-2),
    "w8a8": (3e-3, 5e-4),
    "w8a8-static": (3e-3, 5e-4),
    "w4a8-g32": (1e-2, 1.5e-2),  # held to int4-g32's bars
}
base = kiln_json(args, "eval", MODEL, "--text", text, "--window", 256, "--max-tokens", 8192, "--json")
table = {"teacher_perplexity": base["perplexity"]}
for name, (max_dppl, max_kl) in BARS.items():
    pipeline = os.path.join(root, "pipelines", name + ".yaml")
    out = kiln_json(args, "eval", MODEL, "--text", text, "--window", 256, "--max-tokens", 8192, "--pipeline", pipeline,
                    "--calibration", os.path.join(MODEL, "calib.txt"), "--against", MODEL, "--json")
    dppl = (out["perplexity"] - base["perplexity"]) / base["perplexity"]
    table[name] = {"perplexity": out["perplexity"], "dppl": dppl, "kl": out["kl"], "top1": out["top1_agreement"]}
    msg = f"{name}: ppl {out['perplexity']:.4f} (dppl {100 * dppl:+.4f}%), KL {out['kl']:.3g}, top-1 {out['top1_agreement']:.4f}"
    ok = out["kl"] <= max_kl and (max_dppl is None or abs(dppl) <= max_dppl)
    c.check(ok, msg)
json.dump(table, open(os.path.join(args.work, "accuracy.json"), "w"), indent=1)

golden = json.load(open(os.path.join(MODEL, "golden.json")))
for p in golden["prompts"]:
    ir = os.path.join(args.work, "f16.mlir")
    kiln(args, "compile", MODEL, "--pipeline", os.path.join(root, "pipelines", "f16.yaml"), "--emit", "kiln",
         "--prompt-len", 8, "--ctx-len", 64, "-o", ir)
    out = kiln_json(args, "run", "--reference", ir, "--prompt", p["prompt"], "-n", 32, "--json")
    c.check(out["ids"] == p["greedy_ids"], f"f16 {p['prompt']!r}: token-exact on the golden prompt")
c.finish()
