#!/usr/bin/env python3
"""Accuracy of every shipped weight-format pipeline on the trained model's
held-out text, against its f32 model, at the bars of the pass-library issue
(--window 256 --max-tokens 8192): f32 dppl <= 0.001% and KL 0; f16 KL <= 1e-6;
bf16 KL <= 2e-5; int8 dppl <= 0.2% and KL <= 1e-4; int4-g32 dppl <= 1% and
KL <= 1.5e-2; int4-g128 dppl <= 1.5% and KL <= 2.5e-2; w8a8 (dynamic, and static
calibrated on calib.txt) dppl <= 0.3% and KL <= 5e-4; w4a8-g32 (int4-g32 weights with the
LM head, int8 activations) at int4-g32's bars; kv-int8 KL <= 1e-5; and the pruning and
reconstruction pipelines at the bars of the pass-library part 2 issue. Writes the measured
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
    "kv-int8": (None, 1e-5),
    # Pruning and reconstruction (calibrated on calib.txt).
    "int4-g32-distill": (1e-2, 1.5e-2),  # and KL <= 0.7x int4-g32's, below
    "prune50": (3e-2, 1.0),
    "prune50-distill": (2e-2, 1e-2),  # and dppl below prune50's, below
    "sparse24-distill": (2e-2, 2.5e-2),
    "mlp50": (2e-2, 1.5e-2),
    "heads25": (3e-2, 2e-2),  # no bar in the issue: Kiln's own, measured 2.6% and 1.4e-2
}
# Every pipeline in one kiln eval (the teacher scores each window once).
base = kiln_json(args, "eval", MODEL, "--text", text, "--window", 256, "--max-tokens", 8192, "--json")
table = {"teacher_perplexity": base["perplexity"]}
files = [os.path.join(root, "pipelines", name + ".yaml") for name in BARS]
rows = kiln_json(args, "eval", MODEL, "--text", text, "--window", 256, "--max-tokens", 8192, "--pipelines",
                 ",".join(files), "--calibration", os.path.join(MODEL, "calib.txt"), "--against", MODEL, "--json",
                 lines=True)
c.check([r["pipeline"] for r in rows] == files, "one row per pipeline, in order")
for (name, (max_dppl, max_kl)), out in zip(BARS.items(), rows):
    dppl = (out["perplexity"] - base["perplexity"]) / base["perplexity"]
    table[name] = {"perplexity": out["perplexity"], "dppl": dppl, "kl": out["kl"], "top1": out["top1_agreement"]}
    msg = f"{name}: ppl {out['perplexity']:.4f} (dppl {100 * dppl:+.4f}%), KL {out['kl']:.3g}, top-1 {out['top1_agreement']:.4f}"
    ok = out["kl"] <= max_kl and (max_dppl is None or abs(dppl) <= max_dppl)
    c.check(ok, msg)
c.check(table["int4-g32-distill"]["kl"] <= 0.7 * table["int4-g32"]["kl"],
        f"int4-g32-distill KL {table['int4-g32-distill']['kl']:.3g} <= 0.7x int4-g32's {table['int4-g32']['kl']:.3g}")
c.check(table["prune50-distill"]["dppl"] < table["prune50"]["dppl"],
        f"prune50-distill dppl {100 * table['prune50-distill']['dppl']:+.3f}% below prune50's "
        f"{100 * table['prune50']['dppl']:+.3f}%")
json.dump(table, open(os.path.join(args.work, "accuracy.json"), "w"), indent=1)

# Compiled artifacts score through the runtime (one decode step per token):
# the f32 artifact is lossless, and quantized artifacts cost what their IR
# costs on the reference. Several models give one JSON line each.
arts = []
for name in ("f32", "w8a8", "w4a8-g32"):
    art = os.path.join(args.work, f"eval-{name}.kiln")
    kiln(args, "compile", MODEL, "--pipeline", os.path.join(root, "pipelines", name + ".yaml"), "--prompt-len", 16,
         "--ctx-len", 256, "-o", art)
    arts.append(art)
lines = kiln_json(args, "eval", *arts, "--text", text, "--window", 256, "--max-tokens", 2048, "--against", MODEL,
                  "--json", lines=True)
c.check([l["model"] for l in lines] == arts, "kiln eval of several artifacts: one line each, in order")
ref_f32 = kiln_json(args, "eval", MODEL, "--text", text, "--window", 256, "--max-tokens", 2048, "--json")
c.check(lines[0]["kl"] < 1e-9 and abs(lines[0]["perplexity"] / ref_f32["perplexity"] - 1) < 1e-6,
        f"f32 artifact: KL {lines[0]['kl']:.2g}, perplexity {lines[0]['perplexity']:.6f} vs reference "
        f"{ref_f32['perplexity']:.6f}")
for art, line, name in zip(arts[1:], lines[1:], ("w8a8", "w4a8-g32")):
    ir = kiln_json(args, "eval", MODEL, "--text", text, "--window", 256, "--max-tokens", 2048, "--pipeline",
                   os.path.join(root, "pipelines", name + ".yaml"), "--against", MODEL, "--json")
    c.check(abs(line["kl"] / ir["kl"] - 1) < 0.2 and abs(line["perplexity"] / ir["perplexity"] - 1) < 1e-3,
            f"{name} artifact: KL {line['kl']:.3g} vs its IR on the reference {ir['kl']:.3g}, perplexity "
            f"{line['perplexity']:.4f} vs {ir['perplexity']:.4f}")

golden = json.load(open(os.path.join(MODEL, "golden.json")))
for p in golden["prompts"]:
    ir = os.path.join(args.work, "f16.mlir")
    kiln(args, "compile", MODEL, "--pipeline", os.path.join(root, "pipelines", "f16.yaml"), "--emit", "kiln",
         "--prompt-len", 8, "--ctx-len", 64, "-o", ir)
    out = kiln_json(args, "run", "--reference", ir, "--prompt", p["prompt"], "-n", 32, "--json")
    c.check(out["ids"] == p["greedy_ids"], f"f16 {p['prompt']!r}: token-exact on the golden prompt")
c.finish()
