#!/usr/bin/env python3
"""Regenerates the bad-input corpus: small model folders, each broken in one way.

Run once after changing a case (the folders are committed):
    python3 test/bad-input/make_corpus.py test/bad-input
cases.json lists, per case, the kiln command (MODEL is the case folder) and a
substring the one-line error must contain.
"""
import json, os, shutil, struct, sys

CONFIG = {"model_type": "gpt2", "vocab_size": 64, "n_positions": 16, "n_embd": 8, "n_layer": 1,
          "n_head": 2, "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
          "tie_word_embeddings": True}


def tensors(cfg):
    e, v, p = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    out = [("wte.weight", [v, e]), ("wpe.weight", [p, e])]
    for i in range(cfg["n_layer"]):
        h = f"h.{i}."
        out += [(h + "ln_1.weight", [e]), (h + "ln_1.bias", [e]),
                (h + "attn.c_attn.weight", [e, 3 * e]), (h + "attn.c_attn.bias", [3 * e]),
                (h + "attn.c_proj.weight", [e, e]), (h + "attn.c_proj.bias", [e]),
                (h + "ln_2.weight", [e]), (h + "ln_2.bias", [e]),
                (h + "mlp.c_fc.weight", [e, 4 * e]), (h + "mlp.c_fc.bias", [4 * e]),
                (h + "mlp.c_proj.weight", [4 * e, e]), (h + "mlp.c_proj.bias", [e])]
    return out + [("ln_f.weight", [e]), ("ln_f.bias", [e])]


def safetensors(entries, pad=True):
    """entries: (name, dtype, shape, bytes). Returns (header dict, data bytes)."""
    header, data = {}, b""
    for name, dtype, shape, blob in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    return header, data


def pack(header, data):
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def good_entries(cfg=CONFIG, skip=(), reshape=None):
    entries = []
    for k, (name, shape) in enumerate(tensors(cfg)):
        if name in skip:
            continue
        if reshape and name in reshape:
            shape = reshape[name]
        n = 1
        for d in shape:
            n *= d
        vals = [((k * 131 + i * 17) % 23 - 11) / 50.0 for i in range(n)]
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
            vals = [1.0] * n
        entries.append((name, "F32", shape, struct.pack(f"<{n}f", *vals)))
    return entries


def write_case(root, name, files):
    d = os.path.join(root, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for fname, content in files.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())


def main(root):
    cfg_text = json.dumps(CONFIG, indent=1)
    good = pack(*safetensors(good_entries()))
    h, data = safetensors(good_entries())
    cases = []

    def case(name, files, command, expect):
        write_case(root, name, files)
        cases.append({"name": name, "command": command, "expect": expect})

    run = ["run", "--reference", "MODEL", "--prompt-ids", "1,2,3", "-n", "2", "--print-ids"]
    case("valid", {"config.json": cfg_text, "model.safetensors": good}, run, None)
    case("missing-config", {"model.safetensors": good}, run, "config.json: missing")
    case("missing-safetensors", {"config.json": cfg_text}, run,
         "model.safetensors: missing (nor is there a model.safetensors.index.json)")
    case("missing-dir", {}, ["run", "--reference", "MODEL/nope", "--prompt-ids", "1"], "nope: no such model folder")
    case("truncated-header", {"config.json": cfg_text, "model.safetensors": good[:5]}, run,
         "model.safetensors: truncated safetensors file: 5 bytes")
    case("truncated-data", {"config.json": cfg_text, "model.safetensors": good[:-100]}, run,
         "lie outside the data area")
    huge = struct.pack("<Q", 1 << 40) + good[8:]
    case("header-past-eof", {"config.json": cfg_text, "model.safetensors": huge}, run,
         "header length 1099511627776 runs past the end of the file")
    bad_json = struct.pack("<Q", 16) + b"{\"wte.weight\": [" + data
    case("header-not-json", {"config.json": cfg_text, "model.safetensors": bad_json}, run,
         "header is not valid JSON")
    h2 = json.loads(json.dumps(h))
    h2["ln_f.bias"]["data_offsets"] = [len(data) - 32, len(data) + 32]
    case("offsets-outside", {"config.json": cfg_text, "model.safetensors": pack(h2, data)}, run,
         "tensor 'ln_f.bias': data_offsets")
    h3 = json.loads(json.dumps(h))
    h3["wpe.weight"]["data_offsets"] = [b - 4 for b in h3["wpe.weight"]["data_offsets"]]
    case("overlapping", {"config.json": cfg_text, "model.safetensors": pack(h3, data)}, run, "overlap")
    h4 = json.loads(json.dumps(h))
    h4["ln_f.weight"]["dtype"] = "F16"
    case("dtype-size-mismatch", {"config.json": cfg_text, "model.safetensors": pack(h4, data)}, run,
         "tensor 'ln_f.weight': dtype F16 and shape need 16 bytes but data_offsets span 32")
    h5 = json.loads(json.dumps(h))
    h5["ln_f.weight"]["dtype"] = "Q4_K"
    case("unknown-dtype", {"config.json": cfg_text, "model.safetensors": pack(h5, data)}, run,
         "unsupported dtype 'Q4_K'")
    h6 = json.loads(json.dumps(h))
    h6["ln_f.weight"]["dtype"] = "I32"
    case("integer-weight", {"config.json": cfg_text, "model.safetensors": pack(h6, data)}, run,
         "tensor 'ln_f.weight' has dtype I32 (supported: F32, F16, BF16)")
    case("missing-tensor", {"config.json": cfg_text,
                            "model.safetensors": pack(*safetensors(good_entries(skip={"h.0.mlp.c_fc.bias"})))},
         run, "missing tensor 'h.0.mlp.c_fc.bias'")
    case("misshaped-tensor", {"config.json": cfg_text, "model.safetensors": pack(*safetensors(
        good_entries(reshape={"h.0.attn.c_attn.weight": [8, 16]})))}, run,
         "tensor 'h.0.attn.c_attn.weight' has shape [8, 16] but the config implies [8, 24]")
    case("config-mismatch", {"config.json": json.dumps(dict(CONFIG, n_layer=2)), "model.safetensors": good}, run,
         "missing tensor 'h.1.ln_1.weight'")
    case("embd-not-divisible", {"config.json": json.dumps(dict(CONFIG, n_head=3)), "model.safetensors": good}, run,
         "n_embd (8) is not divisible by n_head (3)")
    case("config-not-json", {"config.json": "{\"n_embd\": 8,", "model.safetensors": good}, run,
         "config.json: config is not valid JSON")
    case("config-bad-field", {"config.json": json.dumps(dict(CONFIG, n_layer="one")), "model.safetensors": good},
         run, "field 'n_layer' must be an integer")
    case("unsupported-activation", {"config.json": json.dumps(dict(CONFIG, activation_function="swish")),
                                    "model.safetensors": good}, run,
         "activation_function 'swish' is not supported")
    case("index-missing-shard", {"config.json": cfg_text, "model.safetensors.index.json":
                                 json.dumps({"weight_map": {"wte.weight": "model-00001-of-00002.safetensors"}})},
         run, "model-00001-of-00002.safetensors: missing (listed in model.safetensors.index.json)")
    case("index-escapes-folder", {"config.json": cfg_text, "model.safetensors.index.json":
                                  json.dumps({"weight_map": {"wte.weight": "../../etc/passwd"}})},
         run, "names a file outside the folder")
    case("index-name-too-long", {"config.json": cfg_text, "model.safetensors.index.json":
                                 json.dumps({"weight_map": {"wte.weight": "x" * 300 + ".safetensors"}})},
         run, ".safetensors: File name too long")
    case("prompt-too-long", {"config.json": cfg_text, "model.safetensors": good},
         ["run", "--reference", "MODEL", "--prompt-ids", ",".join(["5"] * 20), "--print-ids"],
         "kiln run: the prompt has 20 tokens but the context holds 16")
    case("token-out-of-vocab", {"config.json": cfg_text, "model.safetensors": good},
         ["run", "--reference", "MODEL", "--prompt-ids", "1,64", "--print-ids"],
         "prompt token id 64 is outside the model's vocabulary of 64")
    case("unknown-option", {"config.json": cfg_text, "model.safetensors": good},
         ["run", "--reference", "MODEL", "--prompt-ids", "1", "--temprature", "1"],
         "kiln run: unknown option '--temprature'")
    case("bad-ids", {"config.json": cfg_text, "model.safetensors": good},
         ["run", "--reference", "MODEL", "--prompt-ids", "1,x,3"], "--prompt-ids: 'x' is not a token id")
    case("malformed-mlir", {"model.mlir": "module { kiln.global @w : tensor<4xf32 }"},
         ["run", "--reference", "MODEL/model.mlir", "--prompt-ids", "1"], "model.mlir: invalid kiln IR")
    case("missing-tokenizer", {"config.json": cfg_text, "model.safetensors": good},
         ["run", "--reference", "MODEL", "--prompt", "hello"], "vocab.json: cannot open tokenizer file")
    case("eval-missing-text", {"config.json": cfg_text, "model.safetensors": good},
         ["eval", "MODEL", "--text", "MODEL/none.txt"], "none.txt: cannot open text file")
    with open(os.path.join(root, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
