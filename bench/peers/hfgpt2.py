"""Reads a Hugging Face GPT-2 folder (config.json + safetensors, one file or sharded) with numpy only.

Shared by the peer scripts: hf_to_gguf.py, torch_gpt2.py, ort_gpt2.py. Names come back without the
optional `transformer.` prefix; f16/bf16/f64 are widened/narrowed to float32."""
import json
import struct
import sys
from pathlib import Path

import numpy as np


def read_safetensors(path: Path):
    """Yields (name, float32 ndarray) for every float tensor of one .safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    base = 8 + n
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = mm[base + a: base + b]
        dt = info["dtype"]
        if dt == "F32":
            arr = raw.view("<f4")
        elif dt == "F16":
            arr = raw.view("<f2").astype(np.float32)
        elif dt == "BF16":
            arr = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "F64":
            arr = raw.view("<f8").astype(np.float32)
        else:
            continue  # integer buffers (none in GPT-2 weights)
        yield name, np.asarray(arr, dtype=np.float32).reshape(info["shape"])


def model_files(hf: Path):
    hf = Path(hf)
    idx = hf / "model.safetensors.index.json"
    if idx.is_file():
        return sorted({hf / v for v in json.loads(idx.read_text())["weight_map"].values()})
    f = hf / "model.safetensors"
    if not f.is_file():
        sys.exit(f"error: {hf}: no model.safetensors or model.safetensors.index.json")
    return [f]


def hf_name(name: str) -> str:
    return name[len("transformer."):] if name.startswith("transformer.") else name


def load(hf):
    """(config dict, {name: float32 ndarray}) with Conv1D weights as stored ([in, out])."""
    hf = Path(hf)
    cfg = json.loads((hf / "config.json").read_text())
    cfg.setdefault("n_inner", None)
    cfg["n_inner"] = cfg["n_inner"] or 4 * cfg["n_embd"]
    cfg.setdefault("layer_norm_epsilon", 1e-5)
    w = {}
    for f in model_files(hf):
        for name, t in read_safetensors(f):
            name = hf_name(name)
            if not name.endswith((".attn.bias", ".attn.masked_bias")):
                w[name] = t
    if "lm_head.weight" not in w:
        w["lm_head.weight"] = w["wte.weight"]  # tied
    act = cfg.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        print(f"warning: activation_function {act!r}: the peer models use tanh-GELU", file=sys.stderr)
    if cfg.get("scale_attn_by_inverse_layer_idx") or not cfg.get("scale_attn_weights", True):
        print("warning: non-default attention scaling is not modelled by the peer scripts", file=sys.stderr)
    return cfg, w


def prompt_ids(n, vocab, seed=1):
    """n pseudo-random token ids; the same 64-bit LCG as ort_gpt2.js, so every peer sees the same prompt."""
    state, out = seed & (2**64 - 1), []
    for _ in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out.append((state >> 33) % vocab)
    return out
