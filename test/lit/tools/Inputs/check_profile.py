#!/usr/bin/env python3
"""Checks kiln bench --profile-layers --floor --json output (bench.test): every op of the
graph is charged to its kind with the right call count, the kinds add up to the total, each
block has its row, and the floor is the bytes a step reads over the measured bandwidth.
usage: check_profile.py FORMAT LAYERS PROMPT_LEN N < bench.json"""
import json
import sys

fmt, layers, prompt_len, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
b = json.load(sys.stdin)
p = b["profile"]
dec, pre = p["decode"], p["prefill"]
errors = []


def check(ok, what):
    if not ok:
        errors.append(what)


check(dec["steps"] == n, f"decode steps {dec['steps']} != {n}")
check(pre["graph_runs"] >= 1, "no prefill runs")
linear = {"f32": "linear-f32", "int8": "linear-int8", "w8a8": "linear-w8a8"}[fmt]
expected = {"embedding": 2, "layer-norm": 2 * layers + 1, linear: 4 * layers, "attention": layers,
            "cache-write": 2 * layers, "lm-head": 1, "sampling": 1}
if fmt == "w8a8":
    expected["quantize-activations"] = 4 * layers + 1  # every linear and the head quantize their input
for kind, calls in expected.items():
    got = dec["kinds"].get(kind, {}).get("calls")
    check(got == calls, f"decode {kind}: {got} calls per step, expected {calls}")
for kind in dec["kinds"]:
    check(kind in expected or kind in ("elementwise", "other"), f"unexpected kind {kind}")
for phase, total in (("decode", dec["ms_per_step"]), ("prefill", pre["ms"])):
    kinds = p[phase]["kinds"]
    s = sum(k["ms"] for k in kinds.values())
    check(abs(s - total) <= 1e-6 * max(1.0, total), f"{phase}: kinds add to {s}, total {total}")
    check(abs(sum(k["share"] for k in kinds.values()) - 1) < 1e-6, f"{phase}: shares do not add to 1")
    check(all(k["ms"] >= 0 and k["wait_ms"] >= 0 for k in kinds.values()), f"{phase}: negative time")
    rows = p[phase]["layers"]
    check([r["layer"] for r in rows] == list(range(-1, layers)), f"{phase}: block rows {[r['layer'] for r in rows]}")
    check(all("attention" in r["kinds"] for r in rows[1:]), f"{phase}: a block without attention")
    check("lm-head" in rows[0]["kinds"] and "attention" not in rows[0]["kinds"], f"{phase}: outside-the-blocks row")
    check(abs(sum(r["ms"] for r in rows) - total) <= 1e-6 * max(1.0, total), f"{phase}: blocks do not add up")
f = b["floor"]
check(0 < f["weight_bytes_per_token"] < b["weights_bytes"], "weights read per token not below weights.bin")
check(f["read_gb_s"] > 0.5, f"bandwidth {f['read_gb_s']} GB/s")
ms = (f["weight_bytes_per_token"] + f["kv_bytes_per_token"]) / (f["read_gb_s"] * 1e9) * 1e3
check(abs(ms - f["ms_per_token"]) < 1e-9 * max(1, ms), "floor ms is not bytes over bandwidth")
check(abs(f["decode_vs_floor"] - b["decode_ms_per_token"] / f["ms_per_token"]) < 1e-9, "fraction")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"profile ok: {fmt}, {len(dec['kinds'])} kinds, floor {f['ms_per_token']:.3f} ms, decode {f['decode_vs_floor']:.2f}x")
