"""kiln's Python API against the kiln driver and the raw C API: the same ids, the same logits,
errors as kiln.Error, streaming, stop strings, sampling, evaluation."""
import gc
import json
import os
import subprocess
import sys
from ctypes import POINTER, byref, c_float, c_int32, c_void_p

import numpy as np
import pytest

import kiln
from kiln import _lib
from conftest import MODEL, ROOT, run_kiln

PROMPTS = ["In the beginning", "And the LORD spake unto Moses, saying,", "Blessed are"]


def kiln_run_ids(path, prompt, n, *flags):
    out = run_kiln("run", *path, "--prompt", prompt, "-n", n, "--print-ids", *flags).stdout
    return [int(t) for t in out.split()]


@pytest.mark.parametrize("which", ["f32", "int8"])
def test_greedy_ids_equal_kiln_run(which, request):
    art = request.getfixturevalue(which)
    with kiln.Model(art) as m:
        for p in PROMPTS:
            r = m.generate(p, max_tokens=24, ignore_eos=True)
            assert r.ids == kiln_run_ids([art.path], p, 24), p
            assert r.prompt_ids == m.tokenize(p)
            assert r.text == m.detokenize(r.ids)
            assert r.finish_reason == "length" and len(r.ids) == 24


def test_reference_equals_kiln_run_reference_and_the_cpu_artifact(f32):
    ref = kiln.reference(MODEL, ctx_len=64)
    assert (ref.vocab_size, ref.context_length, ref.eos_token_id) == (50257, 64, 50256)
    with kiln.Model(f32) as m:
        for p in PROMPTS[:2]:
            r = ref.generate(p, max_tokens=12, ignore_eos=True)
            assert r.ids == kiln_run_ids(["--reference", MODEL, "--ctx-len", 64], p, 12), p
            assert r.ids == m.generate(p, max_tokens=12, ignore_eos=True).ids, p
    ref.close()


def test_logits_are_the_c_apis_without_a_copy(f32):
    """The package's arrays against the C API called directly, and against kiln run --top-logits."""
    lib = _lib.runtime()
    a, s = c_void_p(), c_void_p()
    _lib.check(lib.kiln_artifact_open(f32.path.encode(), None, byref(a)))
    _lib.check(lib.kiln_session_create(a, None, byref(s)))
    m = kiln.Model(f32)
    session = m.session()
    ids = m.tokenize(PROMPTS[1])
    raw = POINTER(c_float)()
    arr = (c_int32 * len(ids))(*ids)
    _lib.check(lib.kiln_session_prefill(s, arr, len(ids), byref(raw)))
    ours = session.prefill(ids)
    assert ours.dtype == np.float32 and ours.shape == (m.vocab_size,) and not ours.flags.writeable
    assert ours.ctypes.data == session._address  # the pointer the C API returned, not a copy
    np.testing.assert_array_equal(ours, np.ctypeslib.as_array(raw, (m.vocab_size,)))
    # No copy: the array is the session's buffer, so the next step shows through it.
    before = ours.copy()
    nxt = int(np.argmax(ours))
    _lib.check(lib.kiln_session_decode(s, nxt, byref(raw)))
    step = session.decode(nxt)
    assert step.ctypes.data == ours.ctypes.data
    np.testing.assert_array_equal(ours, np.ctypeslib.as_array(raw, (m.vocab_size,)))
    assert not np.array_equal(before, ours)
    lib.kiln_session_destroy(s)
    lib.kiln_artifact_close(a)
    # The driver's top logits of the same two steps (JSON floats round-trip exactly).
    out = json.loads(run_kiln("run", f32.path, "--prompt-ids", ",".join(map(str, ids)), "-n", 2, "--json",
                              "--top-logits", 5).stdout)
    for k, logits in enumerate([before, session.logits]):
        assert [[i, float(np.float32(v))] for i, v in out["top_logits"][k]] == \
            [[int(i), float(logits[i])] for i, _ in out["top_logits"][k]]
        assert [i for i, _ in out["top_logits"][k]] == list(np.argsort(-logits, kind="stable")[:5])
    m.close()


def test_a_logits_array_outlives_its_model(f32):
    m = kiln.Model(f32)
    logits = m.session().prefill(m.tokenize("In the beginning"))
    kept = logits.copy()
    m.close()
    del m
    gc.collect()
    np.testing.assert_array_equal(logits, kept)  # the buffer lives while an array views it


def test_stream_pieces_are_utf8_safe_and_make_the_text(random_model, work):
    """A random model samples arbitrary byte tokens: pieces never split a character."""
    art = kiln.compile(random_model, work / "random-f32")
    with kiln.Model(art) as m:
        for seed in range(4):
            st = m.stream("x", max_tokens=48, temperature=1.5, seed=seed, ignore_eos=True)
            pieces = list(st)
            assert "".join(pieces) == st.result.text == m.detokenize(st.result.ids)
            assert st.result.ids == kiln_run_ids([art.path], "x", 48, "--temperature", 1.5, "--seed", seed)
            assert all(pieces)


def test_stop_strings(f32):
    with kiln.Model(f32) as m:
        full = m.generate("In the beginning", max_tokens=20)
        assert " LORD" in full.text
        r = m.generate("In the beginning", max_tokens=20, stop=[" LORD", "zzz"])
        assert r.finish_reason == "stop" and r.text == full.text[:full.text.index(" LORD")]
        pieces = list(st := m.stream("In the beginning", max_tokens=20, stop=" LORD"))
        assert "".join(pieces) == r.text and st.result.finish_reason == "stop"


def test_sampling_matches_kiln_run_and_seed_none_is_fresh(f32):
    with kiln.Model(f32) as m:
        r = m.generate("In the beginning", max_tokens=16, temperature=0.9, top_k=40, top_p=0.95, seed=7,
                       ignore_eos=True)
        assert r.seed == 7
        assert r.ids == kiln_run_ids([f32.path], "In the beginning", 16, "--temperature", 0.9, "--top-k", 40,
                                     "--top-p", 0.95, "--seed", 7)
        a = m.generate("In the beginning", max_tokens=8, temperature=1.0)
        b = m.generate("In the beginning", max_tokens=8, temperature=1.0, seed=a.seed)
        assert a.ids == b.ids


def test_session_reset_position_and_context(f32):
    with kiln.Model(f32) as m:
        s = m.session(threads=1)
        s.prefill([818, 262])
        assert s.position == 2
        s.decode(3726)
        assert s.position == 3
        s.reset()
        assert s.position == 0
        with pytest.raises(kiln.Error, match="prefill first"):
            s.logits
        s.prefill(list(range(60)))
        with pytest.raises(kiln.Error, match="context"):
            s.prefill(list(range(10)))
        assert s.position == 60  # a refused prefill changes nothing


def test_errors_are_kiln_errors(f32, work):
    with pytest.raises(kiln.Error, match="not an artifact"):
        kiln.Model(work / "no-such-artifact")
    m = kiln.Model(f32)
    with pytest.raises(kiln.Error, match="the prompt has 65 tokens but the context holds 64"):
        m.generate(list(range(65)))
    with pytest.raises(kiln.Error, match="outside"):
        m.session().prefill([m.vocab_size])
    with pytest.raises(kiln.Error, match="outside"):
        m.generate([-1])
    with pytest.raises(kiln.Error, match="empty"):
        m.generate("")
    with pytest.raises(kiln.Error, match="temperature"):
        m.generate("In", temperature=-1)
    with pytest.raises(kiln.Error, match="outside"):
        m.detokenize([10**6])
    s = m.session()
    m.close()
    for call in (lambda: m.generate("In"), lambda: m.tokenize("In"), m.session, lambda: s.prefill([1])):
        with pytest.raises(kiln.Error, match="closed"):
            call()
    with pytest.raises(kiln.Error, match="no shipped pipeline of that name \\(shipped: .*int8"):
        kiln.compile(MODEL, work / "bad", pipeline="int9")
    with pytest.raises(kiln.Error, match="no-such-dir"):
        kiln.compile(work / "no-such-dir", work / "bad")
    with pytest.raises(kiln.Error, match="no-such-model"):
        kiln.reference(work / "no-such-model")
    with pytest.raises(kiln.Error, match="window"):
        kiln.eval(f32, "In the beginning God created the heaven and the earth.", window=1)


def test_compile_import_pipelines(work):
    names = kiln.pipelines()
    assert {"f32", "int8", "int4-g32", "w8a8", "sparse24-distill", "mlp50-kd"} <= set(names)
    assert "int8" in kiln.pipelines(describe=True)["int8"].lower()
    ir = kiln.import_model(MODEL, ctx_len=32, prompt_len=8)
    assert "func.func @prefill" in ir and "func.func @decode" in ir and "kiln." in ir
    mlir = kiln.compile(MODEL, work / "w8a8.mlir", pipeline="w8a8", ctx_len=32, prompt_len=8, emit="kiln")
    art = kiln.compile(MODEL, work / "passes", pipeline=["kiln-fuse-linear-gelu", "canonicalize"], ctx_len=32,
                       prompt_len=8)
    assert art.target == "cpu" and art.size_bytes > 0
    ref = kiln.reference(mlir)  # the reference runs the quantized IR
    with kiln.Model(kiln.compile(mlir, work / "w8a8", pipeline=["canonicalize"])) as m:
        assert m.generate("In the beginning", 10, ignore_eos=True).ids == \
            ref.generate("In the beginning", 10, ignore_eos=True).ids


def test_eval_equals_kiln_eval(f32, int8):
    text = MODEL / "eval.txt"
    got = kiln.eval(int8, text, window=64, max_tokens=256, against=f32)
    want = json.loads(run_kiln("eval", int8.path, "--text", text, "--window", 64, "--max-tokens", 256, "--against",
                               f32.path, "--json").stdout)
    assert got == want
    assert got["tokens"] == 252 and 0 < got["kl"] < 0.05 and got["top1_agreement"] > 0.9
    rows = kiln.eval(MODEL, text, window=64, max_tokens=128, against=MODEL, pipelines=["int8", "f32"])
    assert [r["pipeline"] for r in rows] == ["int8", "f32"]
    assert rows[1]["kl"] < 1e-6 and rows[0]["kl"] > rows[1]["kl"]
    assert kiln.eval(kiln.Model(f32), text, window=64, max_tokens=128)["kl"] is None


def test_unclosed_models_and_sessions_at_exit(f32, work):
    """Objects left open at exit, or collected in any order, free their C objects in order (a
    session before its artifact): a vulkan artifact's session touches its device when freed."""
    arts = [f32.path]
    devices = run_kiln("devices").stdout
    if "vulkan:\n  0:" in devices:
        arts.append(kiln.compile(MODEL, work / "f32-vulkan", target="vulkan", prompt_len=16, ctx_len=64).path)
    script = ("import gc, sys, kiln\n"
              "m = kiln.Model(sys.argv[1]); s = m.session(); l = s.prefill([818, 262]); m.generate('In', 3)\n"
              "m2 = kiln.Model(sys.argv[1]); s2 = m2.session(); s2.prefill([818]); del m2; gc.collect()\n"
              "s2.decode(262)\n")
    for art in arts:
        p = subprocess.run([sys.executable, "-c", script, art], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "python")})
        assert p.returncode == 0, f"{art}: exit {p.returncode}\n{p.stderr}"


def test_recompiling_over_an_open_artifact_leaves_it_running(work, random_model):
    """kiln compile swaps a new folder in and never writes the old files in place, so a process
    with the artifact open keeps its mapped weights and code; a new open sees the new model."""
    art = kiln.compile(MODEL, work / "swapped", prompt_len=4, ctx_len=32)
    with kiln.Model(art) as m:
        s = m.session()
        s.prefill(m.tokenize("In the beginning"))
        first = np.array(s.logits, copy=True)
        before = m.generate("Blessed are", max_tokens=8, ignore_eos=True).ids
        kiln.compile(random_model, work / "swapped", prompt_len=4, ctx_len=32)
        assert m.generate("Blessed are", max_tokens=8, ignore_eos=True).ids == before
        s.reset()
        s.prefill(m.tokenize("In the beginning"))
        assert np.array_equal(s.logits, first), "the open model still computes with its own weights"
    with kiln.Model(work / "swapped") as m:
        assert m.generate("Blessed are", max_tokens=8, ignore_eos=True).ids != before, "a new open: the new model"
