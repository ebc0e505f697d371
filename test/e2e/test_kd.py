#!/usr/bin/env python3
"""End-to-end knowledge distillation (kiln-distill-kd) at the bars of its issue: each
shipped -kd pipeline against the same pipeline without the KD pass, on the trained
model's held-out text (--window 256 --max-tokens 8192, calibrated on calib.txt, both
measured here): KL at most 0.7x and a lower perplexity change. Then LoRA branches kept over a
W4A8 base compile and run: the cpu artifact and the onnx artifact in ONNX Runtime give
the greedy ids of their IR on the reference interpreter. Writes WORK/kd.json."""
import json
import os
import shutil

from common import MODEL, Checks, kiln, kiln_json, parse_args

args = parse_args()
c = Checks()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
text = os.path.join(MODEL, "eval.txt")
calib = os.path.join(MODEL, "calib.txt")
PAIRS = {"mlp50-kd": "mlp50", "sparse24-kd": "sparse24-distill", "w4a8-g32-kd": "w4a8-g32", "heads25-kd": "heads25"}

# Each -kd pipeline and the same pipeline without the KD pass, in one kiln eval (the teacher
# scores each window once), so this test needs no other's output and runs beside e2e.accuracy.
bases = list(dict.fromkeys(PAIRS.values()))
files = [os.path.join(root, "pipelines", n + ".yaml") for n in list(PAIRS) + bases]
teacher = kiln_json(args, "eval", MODEL, "--text", text, "--window", 256, "--max-tokens", 8192, "--json")
rows = kiln_json(args, "eval", MODEL, "--text", text, "--window", 256, "--max-tokens", 8192, "--pipelines",
                 ",".join(files), "--calibration", calib, "--against", MODEL, "--json", lines=True, timeout=1500)
c.check([r["pipeline"] for r in rows] == files, "one row per pipeline, in order")
t_ppl = teacher["perplexity"]
measured = {name: {"perplexity": r["perplexity"], "dppl": (r["perplexity"] - t_ppl) / t_ppl, "kl": r["kl"],
                   "top1": r["top1_agreement"]} for name, r in zip(list(PAIRS) + bases, rows)}
table = {"teacher_perplexity": t_ppl}
for kd, base in PAIRS.items():
    a, b = measured[kd], measured[base]
    table[kd], table[base] = a, b
    c.check(a["kl"] <= 0.7 * b["kl"] and a["dppl"] < b["dppl"],
            f"{kd}: KL {a['kl']:.3g} <= 0.7x {base}'s {b['kl']:.3g} ({a['kl'] / b['kl']:.2f}x), dppl "
            f"{100 * a['dppl']:+.3f}% below {100 * b['dppl']:+.3f}%, top-1 {a['top1']:.4f} (was {b['top1']:.4f})")
json.dump(table, open(os.path.join(args.work, "kd.json"), "w"), indent=1)

# LoRA branches kept over quantized weights are ordinary f32 linears to the backends.
KD = ("kiln-keep-teacher,kiln-quantize-weights{format=int4 group-size=32 include-lm-head=true},"
      "kiln-quantize-activations,kiln-distill-kd{steps=6 batch=1 window=32 max-tokens=2048 eval-windows=1 rank=4 "
      "lr=0.003},kiln-fuse-linear-gelu,kiln-fuse-residual-layer-norm,canonicalize")
ir = os.path.join(args.work, "kd-w4a8.mlir")
kiln(args, "compile", MODEL, "--passes", KD, "--calibration", calib, "--prompt-len", 4, "--ctx-len", 48, "--emit",
     "kiln", "-o", ir)
c.check("kd_A" in open(ir).read(), "w4a8 + lora: the branches stay beside the quantized weights")
arts = []
for target in ("cpu", "onnx"):
    art = os.path.join(args.work, f"kd-w4a8-{target}.kiln")
    shutil.rmtree(art, ignore_errors=True)
    kiln(args, "compile", ir, "--passes", "canonicalize", "--target", target, "-o", art)
    arts.append((target, art))
golden = json.load(open(os.path.join(MODEL, "golden.json")))
for p in golden["prompts"]:
    ref = kiln_json(args, "run", "--reference", ir, "--prompt", p["prompt"], "-n", 16, "--json")
    for target, art in arts:
        got = kiln_json(args, "run", art, "--prompt", p["prompt"], "-n", 16, "--json")
        c.check(got["ids"] == ref["ids"], f"w4a8 + lora {target} {p['prompt']!r}: 16 greedy ids equal the reference")
c.finish()
