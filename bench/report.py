#!/usr/bin/env python3
"""Prints the benchmark table: Kiln and each peer, with Kiln/peer ratios (>1 means Kiln
is faster) and the bandwidth floor for f32 decode."""
import json
import sys

runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
kiln = runs[0]  # f32; further lines are the quantized pipelines
peers = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
cfg = json.load(open(sys.argv[3]))
# Optional: `kiln bench X --against f32` lines (one process, token by token in turn).
against = {}
if len(sys.argv) > 4:
    against = {r["format"]: r for r in (json.loads(l) for l in open(sys.argv[4]) if l.strip())}
E, L, V, I = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg.get("n_inner") or 4 * cfg["n_embd"]
# f32 bytes read per decoded token: every layer's weights, the final norm, the LM head
# (tied wte) and one row of each embedding.
per_layer = (E * 3 * E + 3 * E) + (E * E + E) + (E * I + I) + (I * E + E) + 4 * E
bytes_per_token = 4 * (L * per_layer + 2 * E + V * E + 2 * E)
bw = next((p["read_gb_s"] for p in peers if p["peer"] == "membw"), None)
floor_ms = bytes_per_token / (bw * 1e9) * 1e3 if bw else None

rows = [("Kiln", r.get("format", "f32"), r["prefill_tok_s"], r["decode_ms_per_token"]) for r in runs]
rows += [(p["peer"], p["format"], p["prefill_tok_s"], p["decode_ms_per_token"]) for p in peers if p["peer"] != "membw"]
print(f"GPT-2 124M (random weights), {kiln['threads']} threads, 128-token prompt, 128 decoded tokens")
print(f"{'engine':<12} {'format':<9} {'prefill tok/s':>14} {'decode ms/tok':>14} {'Kiln/peer prefill':>18} {'peer/Kiln decode':>17}")
# Each peer row is compared with the Kiln run of the same scheme: llama.cpp's q8_0
# and q4_0 multiply int8 activations (q8_0 blocks) by int8 / int4 weights, as
# Kiln's w8a8 and w4a8-g32 do.
by_format = {r.get("format", "f32"): r for r in runs}
match = {"f32": "f32", "q8_0": "w8a8", "q4_0": "w4a8-g32"}
for name, fmt, pf, dm in rows:
    k = by_format.get(match.get(fmt, ""))
    rp = "" if name == "Kiln" or not k else f"{k['prefill_tok_s'] / pf:.2f}x"
    rd = "" if name == "Kiln" or not k else f"{dm / k['decode_ms_per_token']:.2f}x"
    print(f"{name:<12} {fmt:<9} {pf:>14.1f} {dm:>14.2f} {rp:>18} {rd:>17}")
peer = {(p["peer"], p["format"]): p for p in peers}
llama_q8, llama_q4 = peer.get(("llama.cpp", "q8_0")), peer.get(("llama.cpp", "q4_0"))
print("bars (decode: higher x is faster):")
for fmt in ("int8", "w8a8", "int4-g32", "w4a8-g32", "bf16-math"):
    r = by_format.get(fmt)
    if not r:
        continue
    line = (f"  Kiln {fmt}: decode {kiln['decode_ms_per_token'] / r['decode_ms_per_token']:.2f}x Kiln f32, "
            f"prefill {r['prefill_tok_s'] / kiln['prefill_tok_s']:.2f}x Kiln f32")
    ref = llama_q8 if fmt in ("int8", "w8a8") else llama_q4 if fmt != "bf16-math" else None
    if ref:
        line += f"; decode {ref['decode_ms_per_token'] / r['decode_ms_per_token']:.2f}x llama.cpp {ref['format']}"
    line += f"; weights {r['weights_bytes'] / 1e6:.1f} MB, peak RSS {r['peak_rss_bytes'] / 1e6:.1f} MB"
    print(line)
for fmt, what in (("sparse24", "2:4 sparse f32"), ("mlp50", "50% of MLP neurons removed, f32"),
                  ("heads25", "25% of attention heads removed, f32")):
    r = by_format.get(fmt)
    if r:
        line = (f"  Kiln {fmt} ({what}): decode {kiln['decode_ms_per_token'] / r['decode_ms_per_token']:.2f}x "
                f"dense f32, prefill {r['prefill_tok_s'] / kiln['prefill_tok_s']:.2f}x; weights "
                f"{r['weights_bytes'] / 1e6:.1f} MB vs {kiln['weights_bytes'] / 1e6:.1f} MB "
                f"({kiln['weights_bytes'] / r['weights_bytes']:.3f}x fewer bytes)")
        ab = against.get(fmt)
        if ab:
            line += (f"\n    in one process, token by token in turn with dense f32: decode {ab['decode_speedup']:.2f}x, "
                     f"prefill {ab['prefill_speedup']:.2f}x (per repeat: "
                     f"{', '.join(f'{x:.2f}' for x in ab['decode_speedups'])})")
        print(line)
# Each Kiln artifact's own floor (kiln bench --floor, measured in its best run's process).
floors = [r for r in runs if "floor" in r]
if floors:
    print("decode against its floor (bytes a step reads / read bandwidth of the same process):")
    print(f"  {'format':<10} {'weights MB':>10} {'KV MB':>7} {'GB/s':>7} {'floor ms':>9} {'decode ms':>10} {'x floor':>8}")
    for r in floors:
        f = r["floor"]
        print(f"  {r.get('format', 'f32'):<10} {f['weight_bytes_per_token'] / 1e6:>10.1f} {f['kv_bytes_per_token'] / 1e6:>7.1f} "
              f"{f['read_gb_s']:>7.1f} {f['ms_per_token']:>9.2f} {r['decode_ms_per_token']:>10.2f} {f['decode_vs_floor']:>7.2f}x")
if floor_ms:
    print(f"bandwidth floor (f32): {bytes_per_token / 1e6:.1f} MB/token at {bw:.1f} GB/s read = {floor_ms:.2f} ms/token; "
          f"Kiln decode is {kiln['decode_ms_per_token'] / floor_ms:.2f}x the floor")
print(f"Kiln: weights {kiln['weights_bytes'] / 1e6:.1f} MB, peak RSS {kiln['peak_rss_bytes'] / 1e6:.1f} MB, "
      f"open {kiln['open_ms']:.1f} ms, compile {kiln['compile_ms'] / 1000:.1f} s, kernels {kiln['kernels']}")
