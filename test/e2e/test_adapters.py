#!/usr/bin/env python3
"""LoRA adapters (docs/adapters.md): PEFT folders written here with numpy, merged
(--adapter) and switchable (--adapters), on the trained model and a random
checkpoint. Every greedy id list is compared with the reference interpreter on
weights merged by numpy (peft_numpy.merged_checkpoint, no Kiln code), and the
first with the independent numpy GPT-2 as well; bad adapter folders get one
line naming the field."""
import ctypes
import json
import os
import shutil

import numpy as np

import gpt2_numpy
import peft_numpy
from common import MODEL, ROOT, Checks, compile_both, kiln, kiln_json, kiln_run, parse_args

args = parse_args()
c = Checks()
work = os.path.join(args.work, "adapters")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
PROMPT = [818, 262, 3726, 1793, 2727]
N = 12
prompt_flag = ",".join(map(str, PROMPT))


def path(name):
    return os.path.join(work, name)


def ref_ids(model, *extra):
    return kiln(args, "run", "--reference", model, "--prompt-ids", prompt_flag, "-n", N, "--print-ids", *extra).split()


def art_ids(art, *extra):
    return kiln(args, "run", art, "--prompt-ids", prompt_flag, "-n", N, "--print-ids", *extra).split()


def merged(tag, model, factors, scale):
    return peft_numpy.merged_checkpoint(model, factors, scale, path(tag + "-merged"))


# --- Merged (--adapter) on the trained model ---------------------------------------------
a1 = path("a1")
f1, s1 = peft_numpy.write_adapter(a1, MODEL, suffixes=peft_numpy.MODULES, r=4, alpha=8.0, seed=1, std=0.15,
                                  target_modules=["c_attn", "c_proj", "c_fc"])
m1 = merged("a1", MODEL, f1, s1)
base = ref_ids(MODEL)
want = ref_ids(m1)
c.check(want != base, f"the adapter changes the greedy text (base {base[:6]}..., adapted {want[:6]}...)")
cfg, w = gpt2_numpy.load(m1)
numpy_ids, _ = gpt2_numpy.greedy(cfg, w, PROMPT, N)
got = ref_ids(MODEL, "--adapter", a1)
c.check(got == [str(i) for i in numpy_ids], "reference --adapter == the numpy GPT-2 on numpy-merged weights")
c.check(got == want, "reference --adapter == reference on the merged checkpoint")
kiln(args, "compile", MODEL, "--adapter", a1, "--prompt-len", 8, "--ctx-len", 64, "-o", path("a1.kiln"))
c.check(art_ids(path("a1.kiln")) == want, "cpu artifact compiled with --adapter == reference on merged weights")
ev = ["--text", os.path.join(MODEL, "eval.txt"), "--window", 64, "--max-tokens", 512, "--json"]
ppl_adapter = kiln_json(args, "eval", MODEL, "--adapter", a1, *ev)["perplexity"]
ppl_merged = kiln_json(args, "eval", m1, *ev)["perplexity"]
c.check(abs(ppl_adapter / ppl_merged - 1) < 1e-9, f"kiln eval --adapter {ppl_adapter:.6f} == merged {ppl_merged:.6f}")

# rsLoRA, f16 factors, two layers, c_attn only; then through the int8 pipeline.
a2 = path("a2")
f2, s2 = peft_numpy.write_adapter(a2, MODEL, suffixes=("attn.c_attn",), r=8, alpha=4.0, seed=2, std=1.0, rslora=True,
                                  layers=[1, 3], dtype="F16")
want2 = ref_ids(merged("a2", MODEL, f2, s2))
c.check(want2 != base, "the rsLoRA adapter changes the greedy text")
c.check(ref_ids(MODEL, "--adapter", a2) == want2, "rsLoRA, f16 factors, layers_to_transform: reference --adapter == merged")
ir, art = compile_both(args, "cpu", MODEL, path("a2-int8"), "--adapter", a2, "--pipeline",
                       os.path.join(ROOT, "pipelines", "int8.yaml"), "--prompt-len", 8,
                       "--ctx-len", 64)
c.check(art_ids(art) == ref_ids(ir), "int8 pipeline over a merged adapter: cpu artifact == reference on its IR")

# A random checkpoint, "all-linear".
rand = path("random")
kiln(args, "make-checkpoint", "--preset", "tiny", "--seed", 5, "-o", rand)
a3 = path("a3")
f3, s3 = peft_numpy.write_adapter(a3, rand, suffixes=peft_numpy.MODULES, r=2, alpha=2.0, seed=3, std=2.0,
                                  target_modules="all-linear")
m3 = merged("a3", rand, f3, s3)
cfg3, w3 = gpt2_numpy.load(m3)
numpy3, _ = gpt2_numpy.greedy(cfg3, w3, PROMPT, N)
rbase = ref_ids(rand)
want3 = ref_ids(m3)
c.check(want3 != rbase, "random checkpoint: the adapter changes the greedy ids")
c.check(want3 == [str(i) for i in numpy3], "random checkpoint: reference on merged == numpy GPT-2")
c.check(ref_ids(rand, "--adapter", a3) == want3, "random checkpoint, all-linear: reference --adapter == merged")
kiln(args, "compile", rand, "--adapter", a3, "--prompt-len", 4, "-o", path("a3.kiln"))
c.check(art_ids(path("a3.kiln")) == want3, "random checkpoint: cpu artifact with --adapter == merged")

# --- Switchable (--adapters) ------------------------------------------------------------
# a1 (r 4, every linear) and a2 (r 8, c_attn of layers 1 and 3): slots of rank 8 there, 4 elsewhere.
pair = f"a1={a1},a2={a2}"
sw_ir, sw = compile_both(args, "cpu", MODEL, path("sw"), "--adapters", pair, "--prompt-len", 8, "--ctx-len", 64)
c.check(art_ids(sw) == base, "switchable artifact, no --adapter: the base model's ids")
c.check(art_ids(sw, "--adapter", "none") == base, "switchable artifact, --adapter none: the base model's ids")
c.check(art_ids(sw, "--adapter", "a1") == want, "switchable artifact, --adapter a1 == reference on a1 merged")
c.check(art_ids(sw, "--adapter", "a2") == want2, "switchable artifact, --adapter a2 == reference on a2 merged")
c.check(ref_ids(sw_ir, "--adapter", "a1") == want, "reference on the switchable IR, --adapter a1 == a1 merged")
slots = [l for l in open(sw_ir) if l.lstrip().startswith("kiln.global") and "{adapter" in l]
c.check(len(slots) == 2 * 16, f"one lora_A/lora_B slot pair per adapted linear ({len(slots) // 2} pairs)")
rand_sw = path("random-sw")
kiln(args, "compile", rand, "--adapters", f"a3={a3}", "--prompt-len", 4, "-o", rand_sw)
c.check(art_ids(rand_sw, "--adapter", "a3") == want3, "random checkpoint: switchable --adapter a3 == a3 merged")
c.check(art_ids(rand_sw) == rbase, "random checkpoint: switchable, no adapter == base")

# Quantized bases (QLoRA: int8 / int4 base, f32 branch; W8A8 keeps the branch's inputs f32).
for pipe in ("int8", "int4-g32", "w8a8"):
    q_ir, q_art = compile_both(args, "cpu", MODEL, path("sw-" + pipe), "--adapters", pair, "--pipeline",
                               os.path.join(ROOT, "pipelines", pipe + ".yaml"), "--prompt-len", 8, "--ctx-len", 64)
    text = open(q_ir).read()
    quantized_slots = [l for l in text.splitlines() if "{adapter" in l and "quant" in l]
    got_q = art_ids(q_art, "--adapter", "a1")
    c.check(not quantized_slots and got_q == ref_ids(q_ir, "--adapter", "a1") and got_q != art_ids(q_art),
            f"{pipe} base + f32 adapter: cpu == reference on its IR, and the adapter changes the ids")

# The onnx backend: adapter slots become graph inputs with _RetainedState outputs (QEfficient's
# LoRA export); ONNX Runtime is fed the selected adapter's factors from adapters.safetensors.
for tag, src in (("f32", sw_ir), ("int8", path("sw-int8.mlir"))):
    onnx_art = path(f"sw-{tag}.onnx")
    kiln(args, "compile", src, "--passes", "canonicalize", "--target", "onnx", "-o", onnx_art)
    io = open(os.path.join(onnx_art, "custom_io.yaml")).read()
    runs = {name: art_ids(onnx_art, *(["--adapter", name] if name else [])) for name in (None, "a1", "a2")}
    refs = {name: ref_ids(src, *(["--adapter", name] if name else [])) for name in (None, "a1", "a2")}
    c.check(runs == refs and len(set(map(tuple, runs.values()))) == 3 and
            "IOName: h.0.attn.c_attn.lora_A_RetainedState" in io,
            f"onnx ({tag} base) in ONNX Runtime: none, a1, a2 each == the reference on the IR; custom_io lists the adapter IO")

# Switching in one process through the C API: sessions of one artifact, adapters switched
# between sequences, and two sessions on different adapters stepped in turn.
lib = ctypes.CDLL(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.kiln))), "lib",
                               "libkiln_runtime.so"))
for f in ("kiln_artifact_open", "kiln_session_create", "kiln_session_prefill", "kiln_session_decode",
          "kiln_session_set_adapter", "kiln_session_reset"):
    getattr(lib, f).restype = ctypes.c_void_p  # kiln_status: NULL on success
lib.kiln_status_message.restype = ctypes.c_char_p
lib.kiln_artifact_adapter_count.restype = ctypes.c_int64
lib.kiln_artifact_adapter_name.restype = ctypes.c_char_p
lib.kiln_artifact_adapter_name.argtypes = [ctypes.c_void_p, ctypes.c_int64]
lib.kiln_session_adapter.restype = ctypes.c_char_p


def ok(status, what):
    if status:
        raise SystemExit(f"{what}: {lib.kiln_status_message(ctypes.c_void_p(status)).decode()}")


art_p = ctypes.c_void_p()
ok(lib.kiln_artifact_open(sw.encode(), None, ctypes.byref(art_p)), "kiln_artifact_open")
names = [lib.kiln_artifact_adapter_name(art_p, i).decode() for i in range(lib.kiln_artifact_adapter_count(art_p))]
c.check(names == ["a1", "a2"], f"C API lists the adapters in order: {names}")
vocab = 50257


class Seq:
    def __init__(self):
        self.s = ctypes.c_void_p()
        ok(lib.kiln_session_create(art_p, None, ctypes.byref(self.s)), "kiln_session_create")
        self.ids = []

    def use(self, name):
        ok(lib.kiln_session_set_adapter(self.s, name.encode() if name else None), "kiln_session_set_adapter")
        ok(lib.kiln_session_reset(self.s), "kiln_session_reset")
        self.ids = []

    def step(self):
        out = ctypes.POINTER(ctypes.c_float)()
        if not self.ids:
            arr = (ctypes.c_int32 * len(PROMPT))(*PROMPT)
            ok(lib.kiln_session_prefill(self.s, arr, ctypes.c_size_t(len(PROMPT)), ctypes.byref(out)), "prefill")
        else:
            ok(lib.kiln_session_decode(self.s, ctypes.c_int32(self.ids[-1]), ctypes.byref(out)), "decode")
        logits = np.ctypeslib.as_array(out, shape=(vocab,))
        self.ids.append(int(np.argmax(logits)))  # argmax: the lowest id on ties, as kiln run

    def run(self, name):
        self.use(name)
        for _ in range(N):
            self.step()
        return [str(i) for i in self.ids]


s1, s2 = Seq(), Seq()
c.check(s1.run("a1") == want and s1.run("a2") == want2 and s1.run(None) == base and s1.run("a1") == want,
        "one session: a1, a2, none, a1 again, each its own ids")
s1.use("a2")
s2.use("a1")
for _ in range(N):
    s1.step()
    s2.step()
c.check([str(i) for i in s1.ids] == want2 and [str(i) for i in s2.ids] == want,
        "two sessions on a2 and a1, stepped in turn: each its adapter's ids")
st = lib.kiln_session_set_adapter(s1.s, b"nope")
msg = lib.kiln_status_message(ctypes.c_void_p(st)).decode() if st else ""
c.check(st and "no adapter named 'nope' (it has: none, a1, a2)" in msg and
        lib.kiln_session_adapter(s1.s).decode() == "a2", f"unknown adapter refused, selection kept: {msg}")

for what, argv, needle in [
    ("an unknown adapter", ["run", sw, "--prompt-ids", "1", "-n", 1, "--adapter", "fr"], "no adapter named 'fr'"),
    ("--adapter NAME on an artifact without adapters", ["run", path("a1.kiln"), "--prompt-ids", "1", "-n", 1,
                                                         "--adapter", "a1"], "has no switchable adapters"),
    ("an unknown adapter in ONNX Runtime", ["run", path("sw-f32.onnx"), "--prompt-ids", "1", "-n", 1, "--adapter", "fr"],
     "no adapter named 'fr'"),
    ("switchable adapters in the vulkan backend", ["compile", MODEL, "--adapters", "x=" + a1, "--target", "vulkan", "-o",
                                                   path("x.vk")], "vulkan backend: switchable adapters"),
    ("switchable adapters and MLP pruning", ["compile", MODEL, "--adapters", "x=" + a1, "--pipeline",
                                             os.path.join(ROOT, "pipelines", "mlp50.yaml"), "--calibration",
                                             os.path.join(MODEL, "calib.txt"), "-o", path("x")],
     "kiln-prune-mlp: switchable adapters"),
]:
    p = kiln_run(args, *argv)
    lines = p.stderr.strip().splitlines()
    c.check(p.returncode != 0 and lines and any(needle in l for l in lines), f"refused: {what} ({lines[-1] if lines else ''})")

# --- Bad adapter folders: exit 1, one line naming the field --------------------------------
def variant(name, config=None, tensors=None, drop=()):
    d = path("bad-" + name)
    shutil.copytree(a1, d)
    if config:
        p = os.path.join(d, "adapter_config.json")
        cfg_ = json.load(open(p))
        cfg_.update(config)
        json.dump(cfg_, open(p, "w"))
    if tensors is not None:
        peft_numpy.write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors)
    for f in drop:
        os.remove(os.path.join(d, f))
    return d


a1_tensors = {f"base_model.model.transformer.{m}.lora_{x}.weight": (a if x == "A" else b)
              for m, (a, b) in f1.items() for x in "AB"}
bad_shape = dict(a1_tensors)
bad_shape["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"] = np.zeros((4, 64))
embedding = dict(a1_tensors)
embedding["base_model.model.transformer.wte.lora_embedding_A"] = np.zeros((4, 10))
missing_b = {k: v for k, v in a1_tensors.items() if k != "base_model.model.transformer.h.2.mlp.c_fc.lora_B.weight"}
pickled = variant("pickled", drop=["adapter_model.safetensors"])
open(os.path.join(pickled, "adapter_model.bin"), "wb").write(b"\x80\x04not a tensor")
notjson = variant("notjson")
open(os.path.join(notjson, "adapter_config.json"), "w").write("{r: 4")
cases = [
    ("peft_type", variant("prefix", {"peft_type": "PREFIX_TUNING"}), "peft_type"),
    ("DoRA", variant("dora", {"use_dora": True}), "use_dora"),
    ("modules_to_save", variant("mts", {"modules_to_save": ["lm_head"]}), "modules_to_save"),
    ("bias", variant("bias", {"bias": "lora_only"}), "'bias'"),
    ("rank_pattern", variant("rank", {"rank_pattern": {"c_attn": 8}}), "rank_pattern"),
    ("an embedding target", variant("wte", {"target_modules": ["c_attn", "wte"]}), "'wte' is not a linear Kiln adapts"),
    ("a target GPT-2 lacks", variant("qproj", {"target_modules": ["q_proj"]}), "'q_proj' matches no module"),
    ("r that the tensors contradict", variant("r8", {"r": 8}), "needs [8, 128]"),
    ("a misshaped factor", variant("shape", tensors=bad_shape), "needs [4, 128]"),
    ("an embedding factor", variant("emb", tensors=embedding), "is not a LoRA factor"),
    ("a missing lora_B", variant("nob", tensors=missing_b), "lora_B of h.2.mlp.c_fc is missing"),
    ("a pickled adapter_model.bin", pickled, "pickled adapter weights are not read"),
    ("a missing config", variant("noconfig", drop=["adapter_config.json"]), "adapter_config.json: cannot open"),
    ("a config that is not JSON", notjson, "not valid JSON"),
    ("a folder that does not exist", path("nowhere"), "no such adapter folder"),
]
for what, folder, needle in cases:
    p = kiln_run(args, "run", "--reference", MODEL, "--adapter", folder, "--prompt-ids", "1", "-n", 1)
    lines = p.stderr.strip().splitlines()
    c.check(p.returncode == 1 and len(lines) == 1 and needle in lines[0],
            f"refused: {what} ({lines[-1] if lines else p.returncode})")
for what, argv, needle in [
    ("--adapter on a .mlir file", ["compile", ir, "--adapter", a1, "-o", path("x")], "not to a .mlir file"),
    ("--adapters without NAME=", ["compile", MODEL, "--adapters", a1, "-o", path("x")], "is not NAME=PEFT_DIR"),
    ("an adapter named none", ["compile", MODEL, "--adapters", "none=" + a1, "-o", path("x")], "not an adapter name"),
    ("an adapter name twice", ["compile", MODEL, "--adapters", f"x={a1},x={a2}", "-o", path("x")], "given twice"),
    ("--adapters in kiln eval", ["eval", MODEL, "--text", os.path.join(MODEL, "eval.txt"), "--adapters", "x=" + a1],
     "unknown option"),
]:
    p = kiln_run(args, *argv)
    lines = p.stderr.strip().splitlines()
    c.check(p.returncode != 0 and lines and needle in lines[-1], f"refused: {what} ({lines[-1] if lines else ''})")

c.finish()
