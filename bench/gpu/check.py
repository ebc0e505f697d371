#!/usr/bin/env python3
"""The H200 device check (bench/gpu/check.sh runs it; under 5 minutes). Writes one JSON file:

    check.py BUNDLE_DIR OUT.json

BUNDLE_DIR is bench/gpu/prepare.sh's build/gpu-check: the MLIR-free kiln, cuda artifacts with the
reference interpreter's outputs, GPT-2 124M artifacts without weights. In order:
  1. token-exact: every small artifact on the GPU against the reference (ids equal, logits within
     1e-3 relative), the device's own argmax, CUDA graphs on and off;
  2. GPT-2 124M (random, seed 11): checkpoint regenerated, weights repacked, the same check;
  3. speed: kiln bench decode tokens/s (f32/f16, graphs on/off) and a 1016-token prefill;
  4. PyTorch eager on the same GPU (torch_eager.py): the same numbers, and HF's greedy ids.
Every step records its errors and the next one still runs."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
bundle, out_path = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
kiln = str(bundle / "bin" / "kiln")
env = dict(os.environ)
env["LD_LIBRARY_PATH"] = str(bundle / "lib") + ":" + env.get("LD_LIBRARY_PATH", "")
result = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "checks": [], "bench": {}, "errors": []}
t0 = time.time()


def sh(cmd, extra_env=None, timeout=300):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**env, **(extra_env or {})})
    return p.returncode, p.stdout, p.stderr


def save():
    result["seconds"] = round(time.time() - t0, 1)
    out_path.write_text(json.dumps(result, indent=1) + "\n")


# The machine, and the libraries kiln finds.
for cmd in (["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], ["ldd", kiln]):
    try:
        result[cmd[0]] = sh(cmd)[1].strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        result[cmd[0]] = str(e)
if "not found" in result.get("ldd", ""):
    env["LD_LIBRARY_PATH"] = str(bundle / "syslib") + ":" + env["LD_LIBRARY_PATH"]
    result["ldd_with_syslib"] = sh(["ldd", kiln])[1].strip()
save()


def worst_logit(got, ref):
    worst = 0.0
    for g_step, r_step in zip(got["top_logits"], ref["top_logits"]):
        scale = max(abs(r_step[0][1]), 1e-6)
        by_id = dict((i, v) for i, v in r_step)
        worst = max([worst] + [abs(v - by_id[i]) / scale for i, v in g_step if i in by_id])
    return worst


def exact(name, ref_file, graphs=True):
    ref = json.loads(ref_file.read_text())
    ids, n = ",".join(map(str, ref["prompt_ids"])), len(ref["ids"])
    extra = {} if graphs else {"KILN_CUDA_GRAPHS": "0"}
    art = str(bundle / "art" / name)
    rc, so, se = sh([kiln, "run", art, "--prompt-ids", ids, "-n", str(n), "--json", "--top-logits", "5", "--stats"], extra)
    entry = {"artifact": name, "prompt": ids, "graphs": graphs}
    if rc != 0:
        entry.update(ok=False, error=se.strip())
    else:
        got = json.loads(so.strip().splitlines()[-1])
        rc2, so2, se2 = sh([kiln, "run", art, "--prompt-ids", ids, "-n", str(n), "--print-ids"], extra)
        device_argmax = so2.split() == list(map(str, ref["ids"]))
        entry.update(ok=got["ids"] == ref["ids"] and worst_logit(got, ref) <= 1e-3 and device_argmax,
                     ids_equal=got["ids"] == ref["ids"], worst_logit=worst_logit(got, ref),
                     device_argmax_equal=device_argmax, stats=se.strip().splitlines())
    result["checks"].append(entry)
    save()


refs = sorted((bundle / "ref").glob("*.json"))
for r in refs:
    name = r.name.split(".")[0]
    if not name.startswith("g124"):
        exact(name, r)
exact("trained-f16", bundle / "ref" / "trained-f16.0.json", graphs=False)

# GPT-2 124M: the checkpoint again (deterministic by seed), its weights repacked per artifact.
ckpt = bundle / "g124-checkpoint"
try:
    if not ckpt.exists():
        rc, so, se = sh([kiln, "make-checkpoint", "--preset", "gpt2", "--seed", "11", "-o", str(ckpt)])
        if rc:
            raise RuntimeError(se.strip())
    for art in ("g124-f32", "g124-f16", "g124-f16-p1024"):
        rc, so, se = sh([sys.executable, str(HERE / "pack_weights.py"), str(ckpt), str(bundle / "art" / art)])
        if rc:
            raise RuntimeError(se.strip())
    for r in refs:
        name = r.name.split(".")[0]
        if name.startswith("g124"):
            exact(name, r)
    exact("g124-f16", bundle / "ref" / "g124-f16.0.json", graphs=False)
except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
    result["errors"].append(f"GPT-2 124M: {e}")
save()

# Speed: decode (128 tokens after a 128-token prompt) and the long prefill, graphs on and off.
for name, art, flags, extra in [
    ("f16 graphs", "g124-f16", ["--prompt-len", "128", "-n", "128"], {}),
    ("f16 no graphs", "g124-f16", ["--prompt-len", "128", "-n", "128"], {"KILN_CUDA_GRAPHS": "0"}),
    ("f32 graphs", "g124-f32", ["--prompt-len", "128", "-n", "128"], {}),
    ("f32 no graphs", "g124-f32", ["--prompt-len", "128", "-n", "128"], {"KILN_CUDA_GRAPHS": "0"}),
    ("f16 prefill 1016", "g124-f16-p1024", ["--prompt-len", "1016", "-n", "8"], {}),
]:
    try:
        rc, so, se = sh([kiln, "bench", str(bundle / "art" / art), *flags, "--repeats", "3", "--json"], extra)
        b = json.loads(so.strip().splitlines()[-1]) if rc == 0 else {"error": se.strip()}
        if rc == 0:
            b["decode_tok_s"] = 1000.0 / b["decode_ms_per_token"]
        result["bench"][name] = b
    except (OSError, subprocess.TimeoutExpired, ValueError) as e:
        result["bench"][name] = {"error": str(e)}
    save()

# PyTorch eager on the same GPU, and HF's greedy ids against the reference's.
try:
    prompts = [",".join(map(str, json.loads((bundle / "ref" / f"g124-f32.{i}.json").read_text())["prompt_ids"]))
               for i in (0, 1)]
    rc, so, se = sh([sys.executable, str(HERE / "torch_eager.py"), str(ckpt), "--prompt-ids", *prompts, "-n", "16"],
                    timeout=600)
    result["torch"] = json.loads(so.strip().splitlines()[-1]) if rc == 0 else {"error": se.strip()[-2000:]}
    if rc == 0:
        refs124 = [json.loads((bundle / "ref" / f"g124-f32.{i}.json").read_text())["ids"] for i in (0, 1)]
        result["torch"]["hf_greedy_equals_reference"] = result["torch"]["greedy"] == refs124
except (OSError, subprocess.TimeoutExpired, ValueError) as e:
    result["torch"] = {"error": str(e)}
result["all_exact"] = bool(result["checks"]) and all(c["ok"] for c in result["checks"])
save()
print(json.dumps({"all_exact": result["all_exact"], "checks": len(result["checks"]),
                  "failed": [c for c in result["checks"] if not c["ok"]][:3], "bench": result["bench"],
                  "torch": {k: v for k, v in result["torch"].items() if k != "greedy"}, "errors": result["errors"]},
                 indent=1))
