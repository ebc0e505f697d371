#!/usr/bin/python3
"""Plain-PyTorch GPT-2 (no transformers) with a KV cache, as a peer for Kiln's benchmarks.

    torch_gpt2.py HF_DIR [--threads 2] [--prompt 128] [--gen 128] [--reps 5] [--warmup 1]
    torch_gpt2.py HF_DIR --prompt-ids 818,262,3726 --gen 32 --print-ids      (greedy ids, for checking)

Loads the HF/Kiln safetensors (numpy reader in hfgpt2.py), runs float32 inference in torch.inference_mode:
prefill of a prompt (random token ids as llama-bench uses; the same ids as ort_gpt2.js, hfgpt2.prompt_ids) that computes logits for the last
position only, then `gen` greedy decode steps, each one token against the cache. Prints one JSON line:
{"peer": "pytorch", "format": "f32", "prefill_tok_s": .., "decode_ms_per_token": .., ...}: the mean over
`reps` timed runs of prompt/prefill_seconds and of decode_seconds/gen*1000 (llama-bench's averaging).
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hfgpt2  # noqa: E402


class GPT2:
    def __init__(self, cfg, w):
        t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32, order="C"))  # noqa: E731 (own, writable copy)
        self.L, self.E, self.H = cfg["n_layer"], cfg["n_embd"], cfg["n_head"]
        self.D = self.E // self.H
        self.ctx = cfg.get("n_positions", cfg.get("n_ctx", 1024))
        self.eps = cfg["layer_norm_epsilon"]
        self.wte, self.wpe = t(w["wte.weight"]), t(w["wpe.weight"])
        self.lm_head = t(w["lm_head.weight"])  # [vocab, E]
        self.lnf = (t(w["ln_f.weight"]), t(w["ln_f.bias"]))
        self.layers = []
        for i in range(self.L):
            p = f"h.{i}."
            g = lambda n: t(w[p + n])  # noqa: E731
            self.layers.append(dict(
                ln1=(g("ln_1.weight"), g("ln_1.bias")), ln2=(g("ln_2.weight"), g("ln_2.bias")),
                # Conv1D weights are [in, out]: x @ W + b, kept as stored.
                qkv=(g("attn.c_attn.weight"), g("attn.c_attn.bias")),
                proj=(g("attn.c_proj.weight"), g("attn.c_proj.bias")),
                fc=(g("mlp.c_fc.weight"), g("mlp.c_fc.bias")),
                fc2=(g("mlp.c_proj.weight"), g("mlp.c_proj.bias"))))
        self.reset()

    def reset(self, max_len=None):
        n = max_len or self.ctx
        self.k = torch.zeros(self.L, self.H, n, self.D)
        self.v = torch.zeros(self.L, self.H, n, self.D)
        self.pos = 0

    def forward(self, ids):
        """ids: LongTensor [S]; appends to the cache; returns logits [vocab] of the last position."""
        S, P = ids.shape[0], self.pos
        T = P + S
        H, D, E = self.H, self.D, self.E
        x = self.wte[ids] + self.wpe[P:T]
        mask = None
        if S > 1:
            mask = torch.full((S, T), float("-inf")).triu_(P + 1)
        scale = 1.0 / math.sqrt(D)
        for i, ly in enumerate(self.layers):
            h = F.layer_norm(x, (E,), *ly["ln1"], self.eps)
            qkv = torch.addmm(ly["qkv"][1], h, ly["qkv"][0])
            q, k, v = qkv.split(E, dim=1)
            q = q.view(S, H, D).transpose(0, 1)
            self.k[i, :, P:T] = k.view(S, H, D).transpose(0, 1)
            self.v[i, :, P:T] = v.view(S, H, D).transpose(0, 1)
            K, V = self.k[i, :, :T], self.v[i, :, :T]
            att = torch.baddbmm(mask.expand(H, S, T), q, K.transpose(1, 2), alpha=scale) if mask is not None \
                else torch.bmm(q, K.transpose(1, 2)).mul_(scale)
            att = torch.softmax(att, dim=-1)
            y = torch.bmm(att, V).transpose(0, 1).reshape(S, E)
            x = x + torch.addmm(ly["proj"][1], y, ly["proj"][0])
            h = F.layer_norm(x, (E,), *ly["ln2"], self.eps)
            h = F.gelu(torch.addmm(ly["fc"][1], h, ly["fc"][0]), approximate="tanh")
            x = x + torch.addmm(ly["fc2"][1], h, ly["fc2"][0])
        self.pos = T
        h = F.layer_norm(x[-1:], (E,), *self.lnf, self.eps)
        return (h @ self.lm_head.t())[0]


def run_once(m, prompt, gen):
    m.reset(len(prompt) + gen)
    t0 = time.perf_counter()
    logits = m.forward(prompt)
    t1 = time.perf_counter()
    out = []
    for _ in range(gen):
        nxt = int(torch.argmax(logits))
        out.append(nxt)
        logits = m.forward(torch.tensor([nxt]))
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=128, help="prompt length (random ids)")
    ap.add_argument("--prompt-ids", default=None, help="comma-separated prompt ids instead")
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--print-ids", action="store_true", help="print the greedy ids of one run and exit")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    cfg, w = hfgpt2.load(args.hf_dir)
    m = GPT2(cfg, w)
    if args.prompt_ids:
        prompt = torch.tensor([int(s) for s in args.prompt_ids.split(",")])
    else:
        prompt = torch.tensor(hfgpt2.prompt_ids(args.prompt, cfg["vocab_size"], args.seed))
    if len(prompt) + args.gen > m.ctx:
        sys.exit(f"error: prompt + gen = {len(prompt) + args.gen} exceeds n_positions {m.ctx}")

    with torch.inference_mode():
        if args.print_ids:
            print(",".join(map(str, run_once(m, prompt, args.gen)[2])))
            return
        for _ in range(args.warmup):
            run_once(m, prompt, args.gen)
        pf, dc = [], []
        for _ in range(args.reps):
            a, b, _ = run_once(m, prompt, args.gen)
            pf.append(len(prompt) / a)
            dc.append(b / max(args.gen, 1) * 1000)
    print(json.dumps({
        "peer": "pytorch", "format": "f32",
        "prefill_tok_s": round(float(np.mean(pf)), 2), "decode_ms_per_token": round(float(np.mean(dc)), 3),
        "prefill_tok_s_std": round(float(np.std(pf)), 2), "decode_ms_per_token_std": round(float(np.std(dc)), 3),
        "n_prompt": len(prompt), "n_gen": args.gen, "threads": args.threads, "reps": args.reps,
        "version": torch.__version__}))


if __name__ == "__main__":
    main()
