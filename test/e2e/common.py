"""Helpers for the end-to-end tests: argument parsing and running kiln."""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "kjv-gpt2-tiny")


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--kiln", required=True)
    p.add_argument("--work", required=True)
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    return args


def _timed(argv, **kw):
    """subprocess.run; with KILN_E2E_PROFILE=FILE, each command's seconds appended to FILE (where
    a test's time goes)."""
    start = time.monotonic()
    p = subprocess.run(argv, **kw)
    if os.environ.get("KILN_E2E_PROFILE"):
        with open(os.environ["KILN_E2E_PROFILE"], "a") as f:
            f.write(f"{time.monotonic() - start:8.2f} {os.path.basename(sys.argv[0])} {' '.join(argv[1:])[:300]}\n")
    return p


def kiln(args, *argv, timeout=900):
    p = _timed([args.kiln, *map(str, argv)], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"kiln {' '.join(map(str, argv))} failed ({p.returncode}):\n{p.stderr}")
    return p.stdout


def kiln_run(args, *argv, env=None):
    """kiln's CompletedProcess, whatever its exit status (for the tests of errors and skips)."""
    return _timed([args.kiln, *map(str, argv)], capture_output=True, text=True, timeout=900,
                  env={**os.environ, **(env or {})})


def compile_both(args, target, model, out, *flags, backend=()):
    """The IR after the pipeline (--emit kiln) in OUT.mlir, and the `target` artifact compiled from
    that IR (with the backend's options `backend`) in OUT.<target>: the reference and the backend
    then run the same IR."""
    kiln(args, "compile", model, *flags, "--emit", "kiln", "-o", out + ".mlir")
    kiln(args, "compile", out + ".mlir", "--passes", "canonicalize", "--target", target, *backend, "-o",
         out + "." + target)
    return out + ".mlir", out + "." + target


def pipeline_file(args, name):
    """pipelines/NAME.yaml; for a -kd pipeline, a copy in WORK that trains 2 steps and scores 1
    window: the IR it gives the backends has the same form (LoRA factors merged into f32 weights or
    kept beside quantized ones), and e2e.kd measures the whole training once."""
    path = os.path.join(ROOT, "pipelines", name + ".yaml")
    text = open(path).read()
    if "kiln-distill-kd" not in text:
        return path
    short = text.replace("steps: 150,", "steps: 2, eval-windows: 1,")
    if short == text:
        sys.exit(f"{path}: its kiln-distill-kd options have no 'steps: 150,' to shorten")
    path = os.path.join(args.work, name + ".short.yaml")
    with open(path, "w") as f:
        f.write(short)
    return path


def kiln_json(args, *argv, lines=False, timeout=900):
    """The JSON object kiln prints last (lines=True: every line, one object each)."""
    out = kiln(args, *argv, timeout=timeout).strip().splitlines()
    return [json.loads(l) for l in out] if lines else json.loads(out[-1])


def cpu_variants():
    """The cpu kernel variants this CPU can run, oldest first (`--kernels` names)."""
    flags = set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    variants = ["generic"]
    if {"avx2", "fma"} <= flags:
        variants.append("avx2")
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        variants.append("avx512")
        if "avx512_vnni" in flags:
            variants.append("avx512vnni")
            if "avx512_bf16" in flags:
                variants.append("avx512bf16")
    return variants


def worst_logit(got, ref):
    """The largest |got - ref| over the ids both list among each step's top logits, relative to the
    reference's largest logit of that step (`kiln run --json --top-logits K` output)."""
    worst = 0.0
    for g_step, r_step in zip(got["top_logits"], ref["top_logits"]):
        scale = max(abs(r_step[0][1]), 1e-6)
        ref_by_id = {i: v for i, v in r_step}
        for i, v in g_step:
            if i in ref_by_id:
                worst = max(worst, abs(v - ref_by_id[i]) / scale)
    return worst


def parted_at_near_tie(got, ref, tolerance):
    """Where greedy ids differ, whether the two runs parted at a near tie: up to and including the
    first differing step, logits within `tolerance` (relative to the reference's largest), and at
    that step the reference scores the other run's pick within 2 x tolerance of its own, so errors
    within the tolerance in opposite directions swap them. Returns (ok, what). Only for lossy
    rounding that the two sides do differently by design: int8 activations rounded from float32
    values in one and float64 in the other, where a value on a rounding boundary moves one step."""
    k = next(i for i, (a, b) in enumerate(zip(got["ids"], ref["ids"])) if a != b)
    upto = {"top_logits": got["top_logits"][:k + 1]}, {"top_logits": ref["top_logits"][:k + 1]}
    worst = worst_logit(*upto)
    r_step = ref["top_logits"][k]
    scale = max(abs(r_step[0][1]), 1e-6)
    ref_by_id = dict((i, v) for i, v in r_step)
    if got["ids"][k] not in ref_by_id:
        return False, f"parted at step {k} on id {got['ids'][k]}, outside the reference's top {len(r_step)}"
    gap = (r_step[0][1] - ref_by_id[got["ids"][k]]) / scale
    return (worst <= tolerance and gap <= 2 * tolerance,
            f"parted at step {k} at a near tie: the reference's top two {gap:.1e} apart, logits to there "
            f"within {worst:.1e}")


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        self.passed += bool(ok)
        self.failed += not ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed or not self.passed else 0)
