#!/usr/bin/env python3
"""Prints the benchmark table: Kiln and each peer, with Kiln/peer ratios (>1 means Kiln
is faster) and the bandwidth floor for f32 decode."""
import json
import sys

kiln = json.load(open(sys.argv[1]))
peers = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
cfg = json.load(open(sys.argv[3]))
E, L, V, I = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg.get("n_inner") or 4 * cfg["n_embd"]
# f32 bytes read per decoded token: every layer's weights, the final norm, the LM head
# (tied wte) and one row of each embedding.
per_layer = (E * 3 * E + 3 * E) + (E * E + E) + (E * I + I) + (I * E + E) + 4 * E
bytes_per_token = 4 * (L * per_layer + 2 * E + V * E + 2 * E)
bw = next((p["read_gb_s"] for p in peers if p["peer"] == "membw"), None)
floor_ms = bytes_per_token / (bw * 1e9) * 1e3 if bw else None

rows = [("Kiln", "f32", kiln["prefill_tok_s"], kiln["decode_ms_per_token"])]
rows += [(p["peer"], p["format"], p["prefill_tok_s"], p["decode_ms_per_token"]) for p in peers if p["peer"] != "membw"]
print(f"GPT-2 124M (random weights), {kiln['threads']} threads, 128-token prompt, 128 decoded tokens")
print(f"{'engine':<12} {'format':<6} {'prefill tok/s':>14} {'decode ms/tok':>14} {'Kiln/peer prefill':>18} {'peer/Kiln decode':>17}")
for name, fmt, pf, dm in rows:
    rp = "" if name == "Kiln" else f"{kiln['prefill_tok_s'] / pf:.2f}x"
    rd = "" if name == "Kiln" else f"{dm / kiln['decode_ms_per_token']:.2f}x"
    print(f"{name:<12} {fmt:<6} {pf:>14.1f} {dm:>14.2f} {rp:>18} {rd:>17}")
if floor_ms:
    print(f"bandwidth floor (f32): {bytes_per_token / 1e6:.1f} MB/token at {bw:.1f} GB/s read = {floor_ms:.2f} ms/token; "
          f"Kiln decode is {kiln['decode_ms_per_token'] / floor_ms:.2f}x the floor")
print(f"Kiln: weights {kiln['weights_bytes'] / 1e6:.1f} MB, peak RSS {kiln['peak_rss_bytes'] / 1e6:.1f} MB, "
      f"open {kiln['open_ms']:.1f} ms, compile {kiln['compile_ms'] / 1000:.1f} s, kernels {kiln['kernels']}")
