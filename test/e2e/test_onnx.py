#!/usr/bin/env python3
"""The onnx backend, checked the way QEfficient checks its exports on a CPU: the artifact's
model.onnx runs in ONNX Runtime (onnxruntime-node, through backends/onnx/runner/kiln-ort.js:
prompt padded to prompt_len with position -1, retained state fed back, greedy) and gives the
reference interpreter's greedy ids exactly, with logits within 1e-3 relative (1e-2 with int8
activations), on the same IR: the trained model's golden prompts, random checkpoints of odd
shapes and types, prompt_len 1 and longer than the prompt, chunked prefill, a batch of two,
every shipped pipeline; and reference == cpu artifact == onnx in ORT on the same prompts.
The sidecar files (specializations.json, custom_io.yaml, qaic-compile.args) are checked too."""
import json
import os
import shutil
import subprocess
import sys

from common import parted_at_near_tie, MODEL, ROOT, Checks, kiln, kiln_json, parse_args, pipeline_file, worst_logit

args = parse_args()
c = Checks()
RUNNER = os.path.join(os.path.dirname(os.path.abspath(args.kiln)), "..", "lib", "kiln", "onnx", "kiln-ort.js")
NODE = shutil.which("node")
if not NODE:
    sys.exit("node is not installed (scripts/setup.sh installs it with ONNX Runtime)")


def ort(art, ids, n, top=5, batch=None, accuracy_level=0):
    prompt = ";".join(",".join(map(str, p)) for p in batch) if batch else ",".join(map(str, ids))
    p = subprocess.run([NODE, RUNNER, art, "--prompt-ids", prompt, "-n", str(n), "--top-logits", str(top),
                        "--threads", "2", "--qdq-accuracy-level", str(accuracy_level)],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        sys.exit(f"kiln-ort.js {art} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ORT's fused int8 kernels saturate u8s8 pair sums on CPUs without VNNI.
VNNI = any(f in open("/proc/cpuinfo").read().split() for f in ("avx512_vnni", "avx_vnni"))


def compare(tag, art, ref_model, prompt_flag, prompt, n, ref_extra=(), tolerance=1e-3, int8_inputs=False):
    ref = kiln_json(args, "run", "--reference", ref_model, prompt_flag, prompt, "-n", n, "--json", "--top-logits", 5,
                    *ref_extra)
    got = ort(art, ref["prompt_ids"], n)
    if int8_inputs and got["ids"] != ref["ids"]:
        # int8 activations: ORT rounds float32 values, the reference float64 ones (see below).
        ok, what = parted_at_near_tie(got, ref, tolerance)
        c.check(ok, f"{tag}: {what}")
    else:
        c.check(got["ids"] == ref["ids"], f"{tag}: {n} greedy ids in ORT equal the reference")
        worst = worst_logit(got, ref)
        c.check(worst <= tolerance, f"{tag}: logits within {tolerance:g} relative (worst {worst:.1e})")
    if int8_inputs and not VNNI:
        print(f"skip {tag}: ORT's stock QDQ fusions at accuracy level 4: this CPU has no VNNI, where ORT's fused "
              "int8 kernels saturate u8s8 pair sums (measured up to 0.25 on W8A8-static logits)", flush=True)
    elif int8_inputs:
        # With ORT's stock QDQ fusions at its default accuracy level (4), its DQ -> MatMulNBits fusion
        # requantizes the int8 inputs in its own blocks: the same ids, logits a bounded step apart.
        stock = ort(art, ref["prompt_ids"], n, accuracy_level=4)
        if stock["ids"] != ref["ids"]:
            ok, what = parted_at_near_tie(stock, ref, 3e-2)
            c.check(ok, f"{tag}: at ORT's default QDQ accuracy level 4, {what}")
        else:
            worst = worst_logit(stock, ref)
            c.check(worst <= 3e-2,
                    f"{tag}: at ORT's default QDQ accuracy level 4, ids equal, logits within 3e-2 (worst {worst:.1e})")
    return ref


def compile_both(model, out, *flags):
    """The IR after the pipeline (--emit kiln), and the onnx artifact compiled from that IR."""
    kiln(args, "compile", model, *flags, "--emit", "kiln", "-o", out + ".mlir")
    kiln(args, "compile", out + ".mlir", "--passes", "canonicalize", "--target", "onnx", "-o", out + ".onnx")
    return out + ".mlir", out + ".onnx"


golden = json.load(open(os.path.join(MODEL, "golden.json")))
work = args.work

# The trained model: prompt_len 1, 4 (shorter and longer prompts: chunked prefill) and 16
# (longer than every prompt); reference == cpu artifact == ORT (QEfficient's HF == KV == ORT).
for prompt_len in (1, 4, 16):
    ir, art = compile_both(MODEL, os.path.join(work, f"onnx-tiny-p{prompt_len}"), "--prompt-len", prompt_len,
                           "--ctx-len", 64)
    for p in golden["prompts"]:
        tag = f"trained p{prompt_len} {p['prompt']!r}"
        ref = compare(tag, art, ir, "--prompt", p["prompt"], 24)
        if prompt_len == 4:
            got = ort(art, ref["prompt_ids"], 32, top=1)
            c.check(got["ids"] == p["greedy_ids"], f"{tag}: golden.json's 32 ids in ORT")
    long_prompt = ",".join(str(i * 97 % 50000 + 11) for i in range(13))
    compare(f"trained p{prompt_len} 13-token prompt ({-(-13 // prompt_len)} chunks)", art, ir, "--prompt-ids",
            long_prompt, 8)

cpu = os.path.join(work, "onnx-tiny-cpu.kiln")
kiln(args, "compile", MODEL, "--prompt-len", 4, "--ctx-len", 64, "-o", cpu)
onnx_art = os.path.join(work, "onnx-tiny-p4.onnx")
for p in golden["prompts"]:
    ref = kiln_json(args, "run", "--reference", MODEL, "--prompt", p["prompt"], "-n", 24, "--json", "--ctx-len", 64,
                    "--top-logits", 5)
    on_cpu = kiln_json(args, "run", cpu, "--prompt", p["prompt"], "-n", 24, "--json")
    in_ort = ort(onnx_art, ref["prompt_ids"], 24, top=1)
    # `kiln run` on the onnx artifact: the driver's own loop, the logits from ORT (kiln-ort.js --serve).
    run_ort = kiln_json(args, "run", onnx_art, "--prompt", p["prompt"], "-n", 24, "--json", "--top-logits", 5)
    c.check(ref["ids"] == on_cpu["ids"] == in_ort["ids"] == run_ort["ids"],
            f"reference == cpu == onnx in ORT (runner and kiln run): {p['prompt']!r}")
    worst = worst_logit(run_ort, ref)
    c.check(worst <= 1e-3, f"kiln run on the onnx artifact: logits within 1e-3 relative (worst {worst:.1e})")
sampled = [kiln(args, "run", a, "--prompt", "And God said", "-n", 16, "--temperature", 0.8, "--top-k", 40, "--seed", 7,
                "--print-ids") for a in (cpu, onnx_art)]
c.check(sampled[0] == sampled[1], "kiln run: seeded sampling gives the cpu artifact's ids on the onnx artifact")
text = os.path.join(MODEL, "eval.txt")
ev = kiln_json(args, "eval", onnx_art, "--text", text, "--window", 64, "--max-tokens", 1024, "--against", cpu,
               "--json")
ev_cpu = kiln_json(args, "eval", cpu, "--text", text, "--window", 64, "--max-tokens", 1024, "--json")
c.check(abs(ev["perplexity"] / ev_cpu["perplexity"] - 1) < 1e-5 and ev["kl"] < 1e-8 and ev["top1_agreement"] == 1.0,
        f"kiln eval in ORT: perplexity {ev['perplexity']:.4f} (cpu {ev_cpu['perplexity']:.4f}), KL {ev['kl']:.1e} "
        f"against the cpu artifact")

# A batch of two prompts in one session (batch_size 2) gives each prompt's own ids.
a, b = golden["prompts"][0], golden["prompts"][1]
ra = kiln_json(args, "run", "--reference", os.path.join(work, "onnx-tiny-p4.mlir"), "--prompt", a["prompt"], "-n", 12,
               "--json")
rb = kiln_json(args, "run", "--reference", os.path.join(work, "onnx-tiny-p4.mlir"), "--prompt", b["prompt"], "-n", 12,
               "--json")
both = ort(onnx_art, None, 12, top=1, batch=[ra["prompt_ids"], rb["prompt_ids"]])["batch"]
c.check(both[0]["ids"] == ra["ids"] and both[1]["ids"] == rb["ids"],
        f"batch_size 2 in one ORT session (prompts of {len(ra['prompt_ids'])} and {len(rb['prompt_ids'])} tokens)")

# Random checkpoints of odd shapes and types.
RANDOM = [
    ("h3-e96-l5-f16", ["--n-head", 3, "--n-embd", 96, "--n-layer", 5, "--dtype", "f16"]),
    ("bf16-untied-prefixed", ["--dtype", "bf16", "--untied", "--prefixed"]),
    ("vocab-8191-gelu-erf", ["--vocab-size", 8191, "--activation", "gelu", "--n-inner", 100]),
]
for name, flags in RANDOM:
    folder = os.path.join(work, "onnx-ckpt-" + name)
    shutil.rmtree(folder, ignore_errors=True)
    kiln(args, "make-checkpoint", "--preset", "tiny", "--seed", 5, "-o", folder, *flags)
    ir, art = compile_both(folder, os.path.join(work, "onnx-" + name), "--prompt-len", 8, "--ctx-len", 48)
    compare(name, art, ir, "--prompt-ids", "5,17,99,1000,3,3,42", 16)
    compare(name + " 12-token prompt (2 chunks)", art, ir, "--prompt-ids",
            ",".join(str(i * 7 + 1) for i in range(12)), 8)

# Every shipped pipeline (and int4 asymmetric with the LM head), on the trained model and on a
# random f16 checkpoint of odd shape.
# The -kd pipelines train 2 steps here (pipeline_file).
PIPELINES = [(f[:-5], ["--pipeline", pipeline_file(args, f[:-5])])
             for f in sorted(os.listdir(os.path.join(ROOT, "pipelines"))) if f.endswith(".yaml")]
PIPELINES.append(("int4-g64-asym-lmhead", ["--passes", "kiln-quantize-weights{format=int4 group-size=64 "
                                                       "symmetric=false include-lm-head=true},canonicalize"]))
PIPELINES.append(("w8a8-float-head", ["--passes", "kiln-quantize-weights{format=int8},"
                                              "kiln-quantize-activations,canonicalize"]))
PIPELINES.append(("fused-attention", ["--passes", "kiln-fuse-attention,kiln-fuse-linear-gelu,canonicalize"]))
calib = ["--calibration", os.path.join(MODEL, "calib.txt")]
for fmt, pipeline in PIPELINES:
    # int8 activations: the reference rounds float64 activations, ORT float32 ones; a value on a
    # rounding boundary moves one step (the bound test_artifacts.py holds the cpu kernels to).
    int8_inputs = fmt.startswith(("w8a8", "w4a8"))
    tolerance = 1e-2 if int8_inputs else 1e-3
    for name, model in [("trained", MODEL), ("h3-e96-l5-f16", os.path.join(work, "onnx-ckpt-h3-e96-l5-f16"))]:
        ir, art = compile_both(model, os.path.join(work, f"onnx-{fmt}-{name}"), *pipeline, *calib, "--prompt-len", 4,
                               "--ctx-len", 48)
        if name == "trained":
            for p in golden["prompts"][:2]:
                compare(f"{fmt} {name} {p['prompt']!r}", art, ir, "--prompt", p["prompt"], 12, tolerance=tolerance,
                        int8_inputs=int8_inputs)
        else:
            compare(f"{fmt} {name}", art, ir, "--prompt-ids", "5,17,99,1000,3,3,42", 12, tolerance=tolerance,
                    int8_inputs=int8_inputs)

# The files qaic-compile reads.
spec = json.load(open(os.path.join(onnx_art, "specializations.json")))
c.check(spec == {"specializations": [
    {"name": "Prefill", "symbols": {"batch_size": "1", "ctx_len": "64", "seq_len": "4"}},
    {"name": "Decode", "symbols": {"batch_size": "1", "ctx_len": "64", "seq_len": "1"}}]},
    "specializations.json: Prefill and Decode, named form")
listed = os.path.join(work, "onnx-tiny-list.onnx")
kiln(args, "compile", MODEL, "--target", "onnx", "--prompt-len", 1, "--ctx-len", 32, "--onnx-specializations=list",
     "--onnx-batch-size=2", "-o", listed)
c.check(json.load(open(os.path.join(listed, "specializations.json"))) == {"specializations": [
    {"batch_size": "2", "ctx_len": "32", "seq_len": "1"}]}, "specializations.json: the list form, prompt_len 1 only")


def custom_io(art):
    text = open(os.path.join(art, "custom_io.yaml")).read()
    entries = [e.strip().splitlines() for e in text.strip().split("\n\n")]
    return [(e[0].split(": ")[1], e[1].split(": ")[1]) for e in entries]


io = custom_io(onnx_art)
want = [(f"past_{kv}.{i}{s}", "float16") for i in range(4) for kv in ("key", "value") for s in ("", "_RetainedState")]
c.check(io == want, "custom_io.yaml: every KV input and retained state, float16")
c.check({p for _, p in custom_io(os.path.join(work, "onnx-kv-int8-trained.onnx"))} == {"mxint8"},
        "custom_io.yaml: mxint8 with the int8 KV cache")
c.check({p for _, p in custom_io(os.path.join(work, "onnx-bf16-untied-prefixed.onnx"))} == {"bfloat16"},
        "custom_io.yaml: bfloat16 for a bf16 model")
cmd = open(os.path.join(onnx_art, "qaic-compile.args")).read().split()
c.check(cmd[:4] == ["/opt/qti-aic/exec/qaic-compile", "-aic-hw", "-aic-hw-version=ai100", "-m=model.onnx"] and
        "-retained-state" in cmd and "-convert-to-fp16" in cmd and "-aic-num-cores=16" in cmd and
        "-network-specialization-config=specializations.json" in cmd and
        "-custom-IO-list-file=custom_io.yaml" in cmd and "-aic-binary-dir=qpc" in cmd and "-mxfp6-matmul" not in cmd,
        "qaic-compile.args: QEfficient's command line")
mx = os.path.join(work, "onnx-tiny-mxfp6.onnx")
kiln(args, "compile", MODEL, "--target", "onnx", "--prompt-len", 4, "--ctx-len", 32, "--onnx-mxfp6-matmul=true",
     "--onnx-num-cores=14", "--onnx-hw-version=ai200", "-o", mx)
cmd = open(os.path.join(mx, "qaic-compile.args")).read().split()
c.check("-mxfp6-matmul" in cmd and "-aic-num-cores=14" in cmd and "-aic-hw-version=ai200" in cmd,
        "qaic-compile.args: the backend options")
# The runner's own options and its bad input.
plain = ort(onnx_art, [818, 262, 3726], 8, top=1)
p = subprocess.run([NODE, RUNNER, onnx_art, "--prompt-ids", "818,262,3726", "-n", "8", "--optimization", "disabled"],
                   capture_output=True, text=True, timeout=300)
c.check(p.returncode == 0 and json.loads(p.stdout)["ids"] == plain["ids"],
        "kiln-ort.js --optimization disabled: the same ids")
for argv, message in [(["--prompt-ids", "1,2", "--optimization", "max"], "--optimization must be"),
                      (["--prompt-ids", "1,x"], "'x' is not a token id"),
                      (["--prompt-ids", "1", "--qdq-accuracy-level", "5"], "--qdq-accuracy-level must be 0 to 4"),
                      (["--prompt-ids", "1", "--bogus"], "unknown option '--bogus'")]:
    p = subprocess.run([NODE, RUNNER, onnx_art, *argv], capture_output=True, text=True, timeout=300)
    c.check(p.returncode == 1 and message in p.stderr and p.stderr.count("\n") == 1,
            f"kiln-ort.js {' '.join(argv)}: one-line error ({p.stderr.strip()})")
p = subprocess.run([NODE, RUNNER, os.path.join(work, "no-such-artifact"), "--prompt-ids", "1"], capture_output=True,
                   text=True, timeout=300)
c.check(p.returncode == 1 and "specializations.json: not found (is this an onnx artifact?)" in p.stderr,
        "kiln-ort.js on a missing artifact: one-line error")
manifest = open(os.path.join(onnx_art, "manifest.yaml")).read()
c.check("target: {name: onnx, opset: 17, graph: model.onnx" in manifest, "manifest: target onnx")
c.finish()
