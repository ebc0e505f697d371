"""Hugging Face PEFT LoRA adapter folders written with numpy, as PEFT's
save_pretrained lays them out for GPT2LMHeadModel, and the merge PEFT's
merge_and_unload computes (W += scale * (B @ A).T for GPT-2's Conv1D), done
here in float64 without any Kiln code."""
import json
import math
import os
import shutil
import struct

import numpy as np

import gpt2_numpy

MODULES = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


def write_safetensors(path, tensors, dtype="F32"):
    """tensors: name -> float array, written as F32, F16 or BF16."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        a = np.asarray(arr, dtype=np.float32)
        if dtype == "F16":
            raw = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            raw = ((a.view(np.uint32) + 0x7FFF + ((a.view(np.uint32) >> 16) & 1)) >> 16).astype("<u2").tobytes()
        else:
            raw = a.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def module_dims(cfg, suffix):
    e = cfg["n_embd"]
    inner = cfg.get("n_inner") or 4 * e
    return {"attn.c_attn": (e, 3 * e), "attn.c_proj": (e, e), "mlp.c_fc": (e, inner), "mlp.c_proj": (inner, e)}[suffix]


def write_adapter(folder, model, suffixes=("attn.c_attn",), r=4, alpha=8.0, seed=0, std=0.5, rslora=False,
                  layers=None, dtype="F32", config_extra=None, target_modules=None):
    """Writes a PEFT LoRA folder for the GPT-2 in `model` and returns its factors
    {module: (A [r, in], B [out, r])} and scale. B is random (PEFT initialises it to
    zero; a trained adapter's is not), large enough to change the greedy text."""
    assert dtype in ("F32", "F16"), dtype
    cfg = json.load(open(os.path.join(model, "config.json")))
    rng = np.random.default_rng(seed)
    layers = list(range(cfg["n_layer"])) if layers is None else layers
    factors, tensors = {}, {}
    for layer in layers:
        for s in suffixes:
            fan_in, fan_out = module_dims(cfg, s)
            a = rng.standard_normal((r, fan_in)) / math.sqrt(fan_in)
            b = rng.standard_normal((fan_out, r)) * std / math.sqrt(r)
            stored = np.float16 if dtype == "F16" else np.float32  # the factors the file holds
            a, b = a.astype(stored).astype(np.float64), b.astype(stored).astype(np.float64)
            module = f"h.{layer}.{s}"
            factors[module] = (a, b)
            tensors[f"base_model.model.transformer.{module}.lora_A.weight"] = a
            tensors[f"base_model.model.transformer.{module}.lora_B.weight"] = b
    os.makedirs(folder, exist_ok=True)
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "openai-community/gpt2",
        "r": r, "lora_alpha": alpha, "lora_dropout": 0.05, "use_rslora": rslora, "fan_in_fan_out": True,
        "bias": "none", "target_modules": target_modules or sorted({s.split(".")[-1] for s in suffixes}),
        "modules_to_save": None, "inference_mode": True, "init_lora_weights": True,
        "layers_to_transform": None if layers == list(range(cfg["n_layer"])) else layers,
        "rank_pattern": {}, "alpha_pattern": {}, "use_dora": False,
    }
    config.update(config_extra or {})
    json.dump(config, open(os.path.join(folder, "adapter_config.json"), "w"), indent=2)
    write_safetensors(os.path.join(folder, "adapter_model.safetensors"), tensors, dtype)
    scale = alpha / (math.sqrt(r) if rslora else r)
    return factors, scale


def merged_checkpoint(model, adapter_factors, scale, out):
    """A Hugging Face folder with the adapter merged into `model`'s weights, in float64
    then rounded to float32 (as merge_and_unload on an f32 model)."""
    cfg, w = gpt2_numpy.load(model)
    for module, (a, b) in adapter_factors.items():
        w[module + ".weight"] = w[module + ".weight"] + scale * (b @ a).T
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for f in ("config.json", "vocab.json", "merges.txt"):
        shutil.copy(os.path.join(model, f), out)
    write_safetensors(os.path.join(out, "model.safetensors"), w)
    return out
