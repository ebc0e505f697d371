#!/usr/bin/python3
"""Writes an ONNX GPT-2 with a KV cache from a Kiln / HF GPT-2 folder (numpy + Debian's python3-onnx).

    ort_gpt2.py HF_DIR OUT.onnx [--contrib]

Run it with ort_gpt2.js (onnxruntime-node). The graph is batch 1, written directly (no exporter):
  inputs   input_ids int64 [S]; past_key_i, past_value_i float [n_head, P, head_dim] for each layer i
           (P = 0 for the prefill: empty tensors)
  outputs  logits float [1, vocab] for the last position only; present_key_i, present_value_i [n_head, P+S, hd]
Positions are P..P+S-1 (P read from past_key_0's shape), the causal mask is built in the graph.
Default: standard opset-17 ops only (LayerNormalization, Gemm, MatMul, Softmax; tanh-GELU written out),
what a torch.onnx export gives; ONNX Runtime's own graph optimizer (level "all") fuses what it can at load.
--contrib: GELU as com.microsoft FastGelu (what onnxruntime.transformers' offline optimizer produces).
Only rewritten when older than the checkpoint.
"""
import argparse
import math
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hfgpt2  # noqa: E402

OPSET = 17


class G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const_i64(self, vals):
        return self.init(self.name("c"), np.array(vals, dtype=np.int64))

    def op(self, op_type, inputs, n_out=1, domain=None, out=None, **attrs):
        outs = out if out is not None else [self.name(op_type) for _ in range(n_out)]
        if isinstance(outs, str):
            outs = [outs]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name("n_" + op_type), domain=domain,
                                           **attrs))
        return outs[0] if len(outs) == 1 else outs


def build(cfg, w, contrib=False):
    L, E, H = cfg["n_layer"], cfg["n_embd"], cfg["n_head"]
    D, V, eps = E // H, cfg["vocab_size"], cfg["layer_norm_epsilon"]
    g = G()
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["S"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, V])]
    for i in range(L):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_{kv}_{i}", TensorProto.FLOAT, [H, "P", D]))
            outputs.append(helper.make_tensor_value_info(f"present_{kv}_{i}", TensorProto.FLOAT, [H, "T", D]))

    c0, c1 = g.const_i64(0), g.const_i64(1)
    # P (past length), S, T = P + S; positions P..T-1; additive causal mask [S, T]
    P = g.op("Gather", [g.op("Shape", ["past_key_0"]), c1], axis=0)
    S = g.op("Gather", [g.op("Shape", ["input_ids"]), c0], axis=0)
    T = g.op("Add", [P, S])
    pos = g.op("Range", [P, T, c1])
    cols = g.op("Range", [c0, T, c1])
    rows = g.op("Unsqueeze", [pos, g.const_i64([1])])                   # [S, 1]
    future = g.op("Greater", [cols, rows])                             # [S, T]: key after query
    mask = g.op("Where", [future, g.init("neg_inf", np.array(-np.inf, np.float32)),
                          g.init("zero", np.array(0, np.float32))])

    x = g.op("Add", [g.op("Gather", [g.init("wte", w["wte.weight"]), "input_ids"], axis=0),
                     g.op("Gather", [g.init("wpe", w["wpe.weight"]), pos], axis=0)])   # [S, E]

    shape_shd = g.const_i64([0, H, D])   # Reshape [S, E] -> [S, H, D] (0 copies S)
    shape_se = g.const_i64([0, E])
    split = g.const_i64([E, E, E])
    scale = g.init("attn_scale", np.array(1.0 / math.sqrt(D), np.float32))
    if not contrib:
        half = g.init("half", np.array(0.5, np.float32))
        one = g.init("one", np.array(1.0, np.float32))
        c044 = g.init("c044715", np.array(0.044715, np.float32))
        s2pi = g.init("sqrt_2_over_pi", np.array(math.sqrt(2.0 / math.pi), np.float32))
        three = g.init("three", np.array(3.0, np.float32))

    def ln(x, p):
        return g.op("LayerNormalization", [x, g.init(p + ".weight", w[p + ".weight"]),
                                           g.init(p + ".bias", w[p + ".bias"])], axis=-1, epsilon=eps)

    def dense(x, p):  # Conv1D: x @ W[in, out] + b
        return g.op("Gemm", [x, g.init(p + ".weight", w[p + ".weight"]), g.init(p + ".bias", w[p + ".bias"])])

    def gelu(x):
        if contrib:
            return g.op("FastGelu", [x], domain="com.microsoft")
        inner = g.op("Mul", [s2pi, g.op("Add", [x, g.op("Mul", [c044, g.op("Pow", [x, three])])])])
        return g.op("Mul", [g.op("Mul", [half, x]), g.op("Add", [one, g.op("Tanh", [inner])])])

    for i in range(L):
        p = f"h.{i}."
        qkv = dense(ln(x, p + "ln_1"), p + "attn.c_attn")
        q, k, v = g.op("Split", [qkv, split], n_out=3, axis=1)
        heads = lambda t: g.op("Transpose", [g.op("Reshape", [t, shape_shd])], perm=[1, 0, 2])  # noqa: E731
        q = g.op("Mul", [heads(q), scale])
        kk = g.op("Concat", [f"past_key_{i}", heads(k)], axis=1, out=f"present_key_{i}")
        vv = g.op("Concat", [f"past_value_{i}", heads(v)], axis=1, out=f"present_value_{i}")
        att = g.op("Add", [g.op("MatMul", [q, g.op("Transpose", [kk], perm=[0, 2, 1])]), mask])   # [H, S, T]
        att = g.op("Softmax", [att], axis=-1)
        y = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [att, vv])], perm=[1, 0, 2]), shape_se])
        x = g.op("Add", [x, dense(y, p + "attn.c_proj")])
        hdn = gelu(dense(ln(x, p + "ln_2"), p + "mlp.c_fc"))
        x = g.op("Add", [x, dense(hdn, p + "mlp.c_proj")])

    last = g.op("Slice", [x, g.const_i64([-1]), g.const_i64([np.iinfo(np.int64).max]), c0])   # [1, E]
    lm = "wte" if w["lm_head.weight"] is w["wte.weight"] else g.init("lm_head", w["lm_head.weight"])
    g.op("Gemm", [ln(last, "ln_f"), lm], transB=1, out="logits")

    graph = helper.make_graph(g.nodes, "kiln_peer_gpt2", inputs, outputs, initializer=g.inits)
    opsets = [helper.make_opsetid("", OPSET)]
    if contrib:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="kiln-bench-peers")
    model.ir_version = 8
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--contrib", action="store_true")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    srcs = [args.hf_dir / "config.json", *hfgpt2.model_files(args.hf_dir), Path(__file__)]
    if not args.force and args.out.is_file() and all(s.stat().st_mtime < args.out.stat().st_mtime for s in srcs):
        print(args.out)
        return
    cfg, w = hfgpt2.load(args.hf_dir)
    model = build(cfg, w, args.contrib)
    if not args.contrib:
        onnx.checker.check_model(model, full_check=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".onnx.tmp")
    onnx.save_model(model, str(tmp))
    tmp.replace(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
