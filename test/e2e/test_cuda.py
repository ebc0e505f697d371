#!/usr/bin/env python3
"""The cuda backend. Everywhere the CUDA toolkit is installed (libdevice, ptxas): every kernel
of every format lowers to PTX through MLIR's NVVM path, the PTX assembles with ptxas for sm_80
and sm_90 with no register spills, and the artifact names them. Where a CUDA driver and GPU are
present too, `kiln run` on the cuda artifacts gives the reference interpreter's greedy ids and
logits within 1e-3 relative, with CUDA graphs on and off (the same checks as e2e.vulkan). Without
a driver, `kiln run` says so in one line. Skips (exit 77) where no toolkit is installed."""
import json
import os
import re
import shutil
import sys

from common import MODEL, ROOT, Checks, compile_both as compile_for, kiln, kiln_json, kiln_run, parse_args, worst_logit

args = parse_args()
c = Checks()
work = args.work
golden = json.load(open(os.path.join(MODEL, "golden.json")))


def run(*argv, env=None):
    return kiln_run(args, *argv, env=env)


probe = os.path.join(work, "cu-probe.cu")
p = run("compile", MODEL, "--target", "cuda", "--prompt-len", 4, "--ctx-len", 64, "-o", probe)
if p.returncode != 0 and "no CUDA toolkit" in p.stderr:
    print(f"skip: {p.stderr.strip()}")
    sys.exit(77)
c.check(p.returncode == 0, f"kiln compile --target cuda ({p.stderr.strip()})")
manifest = open(os.path.join(probe, "manifest.yaml")).read()
HAVE_PTXAS = "kernels.sm_80.cubin" in manifest
if not HAVE_PTXAS:
    print("skip cubin checks: the toolkit has no bin/ptxas")


def compile_both(model, out, *flags, backend=()):
    return compile_for(args, "cuda", model, out, *flags, backend=backend)


def check_artifact(tag, art):
    """kernels.ptx has every entry point of program.json; each cubin's kernels spill nothing."""
    program = json.load(open(os.path.join(art, "program.json")))
    ptx = open(os.path.join(art, "kernels.ptx")).read()
    entries = set(re.findall(r"\.entry (\w+)\(", ptx))
    c.check(entries == set(program["entry_points"]) and ".target sm_80" in ptx and ".extern .func" not in ptx,
            f"{tag}: kernels.ptx has the {len(entries)} entry points, targets sm_80, calls nothing unlinked")
    # The launch ABI the driver uses: one 64-bit pointer parameter per binding, nothing else.
    params = {e: re.findall(r"\.param \.(\w+) ", ptx.split(f".entry {e}(")[1].split(")")[0]) for e in entries}
    counts = {}
    for graph in program["graphs"].values():
        for d in graph["dispatches"]:
            counts[program["entry_points"][d["kernel"]]] = len(d["bindings"])
    c.check(all(params[e] == ["u64"] * counts[e] for e in entries),
            f"{tag}: every kernel takes one pointer per binding of its dispatches")
    if not HAVE_PTXAS:
        return
    report = open(os.path.join(art, "ptxas-report.txt")).read()
    for arch in ("sm_80", "sm_90"):
        section = report.split(f"# ptxas -arch={arch}")[1].split("# ptxas")[0]
        compiled = re.findall(r"Compiling entry function '(\w+)'", section)
        spills = [int(a) + int(b) for a, b in re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", section)]
        regs = [int(r) for r in re.findall(r"Used (\d+) registers", section)]
        c.check(set(compiled) == entries and len(spills) == len(compiled) and not any(spills) and max(regs) <= 128,
                f"{tag}: ptxas -arch={arch} assembles all {len(compiled)} kernels, no spills, at most "
                f"{max(regs)} registers")
        c.check(os.path.getsize(os.path.join(art, f"kernels.{arch}.cubin")) > 0, f"{tag}: kernels.{arch}.cubin")


check_artifact("trained f32", probe)
c.check("target: {name: cuda, ptx: kernels.ptx, ptx_arch: sm_80, archs: [sm_80, sm_90]" in manifest,
        "manifest: target cuda, PTX for sm_80, sm_80 and sm_90 asked for")

# Every weight-only format and the pruning pipelines, on the trained model and an odd-shaped
# random f16 checkpoint.
ckpt = os.path.join(work, "cu-ckpt-h3-e96-f16")
shutil.rmtree(ckpt, ignore_errors=True)
kiln(args, "make-checkpoint", "--preset", "tiny", "--seed", 5, "-o", ckpt, "--n-head", 3, "--n-embd", 96,
     "--n-layer", 5, "--dtype", "f16", "--untied")
PIPELINES = ["f32", "f16", "bf16", "int8", "int4-g32", "heads25", "kv-int8", "w8a8"]
artifacts = []
for fmt in PIPELINES:
    for name, model in [("trained", MODEL), ("h3-e96-f16", ckpt)]:
        ir, art = compile_both(model, os.path.join(work, f"cu-{fmt}-{name}"), "--pipeline",
                               os.path.join(ROOT, "pipelines", fmt + ".yaml"), "--calibration",
                               os.path.join(MODEL, "calib.txt"), "--prompt-len", 4, "--ctx-len", 48)
        check_artifact(f"{fmt} {name}", art)
        artifacts.append((f"{fmt} {name}", ir, art, name == "trained"))

# The stages and bad input.
ptx = kiln(args, "compile", MODEL, "--target", "cuda", "--prompt-len", 4, "--ctx-len", 32, "--emit", "ptx", "-o", "-")
c.check(".version 8.0" in ptx and ".entry attention_" in ptx, "--emit ptx prints the PTX")
lowered = kiln(args, "compile", MODEL, "--target", "cuda", "--prompt-len", 4, "--ctx-len", 32, "--emit", "lowered",
               "-o", "-")
c.check("gpu.module @kernels" in lowered and "spirv.target_env" not in lowered, "--emit lowered prints the gpu kernels")
refused = os.path.join(work, "cu-refused")
for argv, message in [
    (["--cuda-arch=sm_50"], "is not a CUDA architecture from sm_75 on"),
    (["--cuda-arch=gfx90a"], "is not a CUDA architecture"),
    (["--cuda-toolkit=/nonexistent"], "no CUDA toolkit with nvvm/libdevice/libdevice.10.bc at --cuda-toolkit=/nonexistent"),
    (["--cuda-cubin=maybe"], "--cuda-cubin=maybe must be auto, on or off"),
    (["--emit", "llvm"], "is not a cuda stage"),
]:
    p = run("compile", MODEL, "--target", "cuda", *argv, "-o", refused)
    c.check(p.returncode != 0 and message in p.stderr and p.stderr.strip().count("\n") == 0,
            f"kiln compile --target cuda {' '.join(argv)}: one-line error ({p.stderr.strip()})")
c.check(not os.path.exists(refused), "refused compiles write nothing")

# On a GPU: the same ids as the reference, graphs on and off. Without a driver: one line.
p = run("run", probe, "--prompt-ids", "1,2,3", "-n", 2, "--print-ids")
if p.returncode != 0 and ("libcuda.so.1 is not installed" in p.stderr or "no CUDA device" in p.stderr):
    c.check(p.stderr.strip().count("\n") == 0, f"kiln run without a CUDA driver or GPU: one line ({p.stderr.strip()})")
    print("skip the runs on a GPU: " + p.stderr.strip())
else:
    c.check(p.returncode == 0, f"kiln run on a cuda artifact ({p.stderr.strip()})")

    def compare(tag, art, ref_model, prompt_flag, prompt, n, env=None):
        # int8 activations: logits within 1e-2 (a rounding boundary moves a value one step), as on vulkan.
        tolerance = 1e-2 if tag.startswith(("w8a8", "w4a8")) else 1e-3
        ref = kiln_json(args, "run", "--reference", ref_model, prompt_flag, prompt, "-n", n, "--json", "--top-logits", 5)
        q = run("run", art, prompt_flag, prompt, "-n", n, "--json", "--top-logits", 5, env=env)
        got = json.loads(q.stdout.strip().splitlines()[-1]) if q.returncode == 0 else {"ids": [], "top_logits": []}
        c.check(got["ids"] == ref["ids"], f"{tag}: {n} greedy ids on the GPU equal the reference {q.stderr.strip()}")
        worst = worst_logit(got, ref)
        c.check(worst <= tolerance, f"{tag}: logits within {tolerance:g} relative (worst {worst:.1e})")
        fast = run("run", art, prompt_flag, prompt, "-n", n, "--print-ids", env=env).stdout.split()
        c.check(list(map(int, fast)) == ref["ids"], f"{tag}: the GPU's own argmax picks the same ids")

    for tag, ir, art, trained in artifacts:
        if trained:
            for g in golden["prompts"]:
                compare(f"{tag} {g['prompt']!r}", art, ir, "--prompt", g["prompt"], 24)
            compare(f"{tag} 13-token prompt (4 chunks)", art, ir, "--prompt-ids",
                    ",".join(str(i * 97 % 50000 + 11) for i in range(13)), 8)
        else:
            compare(tag, art, ir, "--prompt-ids", "5,17,99,1000,3,3,42", 16)
    compare("f32 trained, CUDA graphs off", artifacts[0][2], artifacts[0][1], "--prompt", golden["prompts"][0]["prompt"],
            24, env={"KILN_CUDA_GRAPHS": "0"})
    p = run("run", probe, "--prompt-ids", "1,2", "--device", 99)
    c.check(p.returncode != 0 and "cuda: device 99 does not exist" in p.stderr, f"--device 99: {p.stderr.strip()}")
c.finish()
