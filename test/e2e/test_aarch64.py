#!/usr/bin/env python3
"""AArch64 artifacts executed, not just inspected: compiled here with
--target-triple=aarch64-linux-gnu and run by the AArch64 build of kiln under qemu-aarch64
(scripts/aarch64.sh), so the NEON kernels of every weight format run. Token-exact against the
reference interpreter on the same IR (logits within 1e-3, 1e-2 with int8 activations) for f32,
f16, int8, int4-g32 and W8A8 on the trained model and a random checkpoint (3 heads, a partial
panel),
with a short context to keep emulation fast. Skips (77) where the cross build is missing:
scripts/test.sh makes it with `scripts/aarch64.sh --setup`."""
import json
import os
import shutil
import subprocess
import sys

from common import MODEL, ROOT, Checks, compile_both, kiln, kiln_json, parse_args, worst_logit

args = parse_args()
runner = os.path.join(ROOT, "scripts", "aarch64.sh")
build = os.environ.get("KILN_AARCH64_BUILD_DIR", os.path.join(ROOT, "build-aarch64"))
if not (os.path.exists(os.path.join(build, "bin", "kiln")) and os.path.exists(os.path.join(build, "sysroot", ".ready"))
        and shutil.which("qemu-aarch64")):
    print(f"SKIP: no AArch64 build in {build} or no qemu-aarch64 (run scripts/aarch64.sh --setup)")
    sys.exit(77)
c = Checks()


def on_aarch64(*argv):
    p = subprocess.run([runner, "kiln", *map(str, argv)], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        sys.exit(f"aarch64 kiln {' '.join(map(str, argv))} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


with open(os.path.join(build, "bin", "kiln"), "rb") as f:
    header = f.read(20)
machine = int.from_bytes(header[18:20], "little")
c.check(header[:4] == b"\x7fELF" and machine == 183, f"the driver under qemu is an AArch64 ELF (e_machine {machine})")

FORMATS = {"f32": None, "f16": "f16", "int8": "int8", "int4-g32": "int4-g32", "w8a8": "w8a8"}
random = os.path.join(args.work, "a64-ckpt")
shutil.rmtree(random, ignore_errors=True)
# n_head 3, n_inner 160 (10 panels of 16, multiples of int4's groups of 32), a vocab of 1009 (a
# partial panel in the LM head).
kiln(args, "make-checkpoint", "--preset", "tiny", "--seed", 5, "--n-embd", 96, "--n-head", 3, "--n-inner", 160,
     "--vocab-size", 1009, "--n-layer", 2, "-o", random)
golden = json.load(open(os.path.join(MODEL, "golden.json")))
MODELS = [("trained", MODEL, ["--prompt", golden["prompts"][1]["prompt"]], 12),
          ("random h3-e96", random, ["--prompt-ids", "5,17,99,1000,3,3,42"], 10)]
for name, model, prompt, n in MODELS:
    for fmt, pipeline in FORMATS.items():
        flags = ["--prompt-len", 4, "--ctx-len", 32]
        if pipeline:
            flags += ["--pipeline", os.path.join(ROOT, "pipelines", pipeline + ".yaml")]
        out = os.path.join(args.work, f"a64-{name.split()[0]}-{fmt}")
        ir, art = compile_both(args, "cpu", model, out, *flags, backend=["--target-triple=aarch64-linux-gnu"])
        manifest = open(os.path.join(art, "manifest.yaml")).read()
        c.check("triple: aarch64-linux-gnu" in manifest, f"{name} {fmt}: an AArch64 artifact")
        ref = kiln_json(args, "run", "--reference", ir, *prompt, "-n", n, "--json", "--top-logits", 5)
        # --kernels neon: the NEON variant or an error, never a silent fallback to the generic one.
        got = on_aarch64("run", art, *prompt, "-n", n, "--json", "--top-logits", 5, "--threads", 2, "--kernels", "neon")
        c.check(got["ids"] == ref["ids"], f"{name} {fmt}: {n} greedy ids under qemu-aarch64 equal the reference")
        tolerance = 1e-2 if fmt == "w8a8" else 1e-3
        worst = worst_logit(got, ref)
        c.check(worst <= tolerance, f"{name} {fmt}: logits within {tolerance:g} relative (worst {worst:.1e})")
c.finish()
