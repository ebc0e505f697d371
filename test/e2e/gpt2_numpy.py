"""An independent GPT-2 forward pass in numpy (float64), written from the
Hugging Face GPT2LMHeadModel semantics, sharing no code with Kiln. It reads a
Hugging Face folder itself (safetensors f32/f16/bf16, optional `transformer.`
prefix, sharded index, tied or separate LM head) and recomputes the whole
sequence at every step (no KV cache), so it checks Kiln's cache too."""
import json
import math
import os
import struct

import numpy as np


def _read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        b, e = entry["data_offsets"]
        raw = data[b:e]
        dtype = entry["dtype"]
        if dtype == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F16":
            arr = np.frombuffer(raw, dtype="<f2")
        elif dtype == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            continue
        name = name[len("transformer."):] if name.startswith("transformer.") else name
        out[name] = arr.astype(np.float64).reshape(entry["shape"])
    return out


def load(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    index = os.path.join(folder, "model.safetensors.index.json")
    weights = {}
    if os.path.exists(os.path.join(folder, "model.safetensors")):
        weights = _read_safetensors(os.path.join(folder, "model.safetensors"))
    else:
        for shard in sorted(set(json.load(open(index))["weight_map"].values())):
            weights.update(_read_safetensors(os.path.join(folder, shard)))
    return cfg, weights


def _layer_norm(x, g, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b


def _gelu(x, kind):
    if kind == "gelu":
        erf = np.vectorize(math.erf)
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def logits(cfg, w, ids):
    """Logits [T, V] for token ids [T]."""
    e, heads = cfg["n_embd"], cfg["n_head"]
    d = e // heads
    t = len(ids)
    x = w["wte.weight"][ids] + w["wpe.weight"][np.arange(t)]
    mask = np.triu(np.ones((t, t), dtype=bool), 1)
    for layer in range(cfg["n_layer"]):
        p = f"h.{layer}."
        h = _layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], cfg.get("layer_norm_epsilon", 1e-5))
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = np.split(qkv, 3, axis=-1)
        q, k, v = (a.reshape(t, heads, d).transpose(1, 0, 2) for a in (q, k, v))
        scores = q @ k.transpose(0, 2, 1)
        if cfg.get("scale_attn_weights", True):
            scores = scores / math.sqrt(d)
        if cfg.get("scale_attn_by_inverse_layer_idx", False):
            scores = scores / float(layer + 1)
        scores = np.where(mask, -np.inf, scores)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        attn = (probs @ v).transpose(1, 0, 2).reshape(t, e)
        x = x + attn @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = _layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], cfg.get("layer_norm_epsilon", 1e-5))
        m = _gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], cfg.get("activation_function"))
        x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = _layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], cfg.get("layer_norm_epsilon", 1e-5))
    tied = cfg.get("tie_word_embeddings", True) or "lm_head.weight" not in w
    return x @ (w["wte.weight"] if tied else w["lm_head.weight"]).T


def greedy(cfg, w, prompt, n):
    """Greedy ids and the logits of each step (full recompute every step)."""
    seq, ids, steps = list(prompt), [], []
    for _ in range(n):
        last = logits(cfg, w, np.array(seq))[-1]
        steps.append(last)
        ids.append(int(np.argmax(last)))
        seq.append(ids[-1])
    return ids, steps
