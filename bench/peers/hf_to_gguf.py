#!/usr/bin/python3
"""Convert a Kiln / Hugging Face GPT-2 folder to GGUF (f32, q8_0, q4_0) for llama.cpp, with numpy only.

    hf_to_gguf.py HF_DIR OUT_DIR [--llama-cpp SRC] [--types f32,q8_0,q4_0] [--llama-quantize BIN|none]

Writes OUT_DIR/model-f32.gguf and, from it, OUT_DIR/model-q8_0.gguf / model-q4_0.gguf with llama-quantize
(llama.cpp's own recipe: for q4_0 that keeps the tied token_embd/output in q6_K, as users get it). With
`--llama-quantize none` the quantized files are written here instead, every 2-D weight in the named type
(gguf-py's numpy reference quantizer; slow). Only files older than their inputs are redone.

Mirrors GPT2Model in llama.cpp's convert_hf_to_gguf.py (conversion/gpt2.py of the bundled source): the same
hparams keys, tensor names (via gguf-py's tensor map), the Conv1D weights transposed to [out, in], the
`.attn.bias` / `.attn.masked_bias` buffers dropped, vocab as tokenizer model "gpt2", pre-tokenizer "gpt-2",
tokens from vocab.json (missing ids as [PADn], UNUSED), <|...|> tokens as CONTROL, merges from merges.txt and
bos/eos from config.json via gguf.SpecialVocab. The gguf package is the gguf-py folder of the llama.cpp source.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hfgpt2 import hf_name, model_files, read_safetensors  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_SRC = HERE.parent.parent / "build" / "bench-peers" / "llama.cpp"


def load_gguf_py(src: Path):
    gp = src / "gguf-py"
    if not (gp / "gguf" / "__init__.py").is_file():
        sys.exit(f"error: {gp}: no gguf-py here (pass --llama-cpp, the llama.cpp source from setup_peers.sh)")
    sys.path.insert(0, str(gp))
    import gguf  # noqa: E402
    return gguf


# ---- conversion -----------------------------------------------------------------------------------
def write_f32(gguf, hf: Path, out: Path):
    cfg = json.loads((hf / "config.json").read_text())
    n_layer, n_embd, n_head = cfg["n_layer"], cfg["n_embd"], cfg["n_head"]
    n_ctx = cfg.get("n_ctx", cfg.get("n_positions", 1024))
    n_ff = cfg.get("n_inner") or 4 * n_embd
    act = cfg.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        print(f"warning: activation_function {act!r}: llama.cpp's GPT-2 graph always uses tanh-GELU", file=sys.stderr)
    if cfg.get("scale_attn_by_inverse_layer_idx") or cfg.get("reorder_and_upcast_attn"):
        print("warning: llama.cpp's GPT-2 graph ignores scale_attn_by_inverse_layer_idx/reorder_and_upcast_attn",
              file=sys.stderr)

    w = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.GPT2])
    # general.* (convert_hf_to_gguf's prepare_metadata) and GPT2Model.set_gguf_parameters
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(hf.name)
    w.add_block_count(n_layer)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_layer_norm_eps(cfg.get("layer_norm_epsilon", 1e-5))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    # vocab: TextModel._set_vocab_gpt2 without transformers
    vocab = json.loads((hf / "vocab.json").read_text(encoding="utf-8"))
    n_vocab = cfg.get("vocab_size", len(vocab))
    special = set()
    tj = hf / "tokenizer.json"
    if tj.is_file():
        for t in json.loads(tj.read_text(encoding="utf-8")).get("added_tokens", []):
            if t.get("special"):
                special.add(t["content"])
    rev = {i: t for t, i in vocab.items()}
    if max(rev) >= n_vocab:
        sys.exit(f"error: vocab.json has id {max(rev)} >= vocab_size {n_vocab}")
    tokens, toktypes = [], []
    for i in range(n_vocab):
        t = rev.get(i)
        if t is None:
            tokens.append(f"[PAD{i}]")
            toktypes.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(t)
            looks = t in special or (t.startswith("<|") and t.endswith("|>"))
            toktypes.append(gguf.TokenType.CONTROL if looks else gguf.TokenType.NORMAL)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(toktypes)
    sv = gguf.SpecialVocab(hf, load_merges=True, n_vocab=n_vocab)
    if not sv.merges:
        sys.exit(f"error: {hf}: no merges (merges.txt)")
    sv.add_to_gguf(w, quiet=True)

    # tensors: GPT2Model.modify_tensors
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPT2, n_layer)
    seen = set()
    for f in model_files(hf):
        for name, t in read_safetensors(f):
            name = hf_name(name)
            if name.endswith((".attn.bias", ".attn.masked_bias")):
                continue
            if name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
                t = t.T  # Conv1D [in, out] -> [out, in]
            new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
            if new is None:
                sys.exit(f"error: {f}: cannot map tensor {name!r}")
            if new in seen:
                continue
            seen.add(new)
            w.add_tensor(new, np.ascontiguousarray(t, dtype=np.float32))
    for need in ("token_embd.weight", "position_embd.weight", "output_norm.weight"):
        if need not in seen:
            sys.exit(f"error: {hf}: tensor for {need} missing")

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def quantize_numpy(gguf, f32: Path, out: Path, qtype: str):
    """Every 2-D weight (row length divisible by the block) in qtype, the rest f32."""
    qt = {"q8_0": gguf.GGMLQuantizationType.Q8_0, "q4_0": gguf.GGMLQuantizationType.Q4_0}[qtype]
    ft = {"q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[qtype]
    r = gguf.GGUFReader(str(f32))
    w = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.GPT2])
    for field in r.fields.values():
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue
        if field.name == gguf.Keys.General.FILE_TYPE:
            w.add_file_type(ft)
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    block = gguf.GGML_QUANT_SIZES[qt][0]
    for t in r.tensors:
        a = np.asarray(t.data)
        if a.ndim == 2 and t.name.endswith(".weight") and a.shape[-1] % block == 0:
            w.add_tensor(t.name, gguf.quants.quantize(a, qt), raw_dtype=qt)
        else:
            w.add_tensor(t.name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def stale(out: Path, *inputs: Path) -> bool:
    return not out.is_file() or any(p.stat().st_mtime > out.stat().st_mtime for p in inputs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--llama-cpp", type=Path, default=Path(os.environ.get("LLAMA_CPP_DIR", DEFAULT_SRC)),
                    help="llama.cpp source tree (gguf-py is taken from it); default %(default)s")
    ap.add_argument("--types", default="f32,q8_0,q4_0")
    ap.add_argument("--llama-quantize", default=None,
                    help="llama-quantize binary (default: SRC/build/bin/llama-quantize), or 'none' for numpy")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="rewrite even when up to date")
    args = ap.parse_args()

    gguf = load_gguf_py(args.llama_cpp)
    hf = args.hf_dir.resolve()
    if not (hf / "config.json").is_file():
        sys.exit(f"error: {hf}: no config.json")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    for t in types:
        if t not in ("f32", "q8_0", "q4_0"):
            sys.exit(f"error: --types: unknown type {t!r} (f32, q8_0, q4_0)")

    inputs = [hf / "config.json", hf / "vocab.json", hf / "merges.txt", *model_files(hf)]
    f32 = args.out_dir / "model-f32.gguf"
    if args.force or stale(f32, *inputs):
        tmp = f32.with_suffix(".gguf.tmp")
        write_f32(gguf, hf, tmp)
        tmp.replace(f32)
    print(f32)

    lq = args.llama_quantize or str(args.llama_cpp / "build" / "bin" / "llama-quantize")
    for t in types:
        if t == "f32":
            continue
        out = args.out_dir / f"model-{t}.gguf"
        if not (args.force or stale(out, f32)):
            print(out)
            continue
        tmp = out.with_suffix(".gguf.tmp")
        if lq != "none" and Path(lq).is_file():
            r = subprocess.run([lq, str(f32), str(tmp), t.upper(), str(args.threads)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                sys.stderr.write(r.stdout[-4000:])
                sys.exit(f"error: llama-quantize {t} failed ({r.returncode})")
        else:
            if lq != "none":
                print(f"note: {lq} not found; quantizing with numpy", file=sys.stderr)
            quantize_numpy(gguf, f32, tmp, t)
        tmp.replace(out)
        print(out)


if __name__ == "__main__":
    main()
