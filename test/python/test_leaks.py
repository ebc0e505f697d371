"""1,000 open/close cycles of a model (artifact, session, a prefill, a generate) and 200 of the
reference's sessions leave the process's resident memory where it was."""
import gc

import kiln
from conftest import MODEL


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4  # resident pages of 4 KiB


def cycle(path, full):
    with kiln.Model(path, threads=1) as m:
        s = m.session()
        logits = s.prefill([818, 262, 3726])
        s.decode(s.sample())
        assert logits.shape == (m.vocab_size,)
        if full:  # text in and out loads the tokenizer (0.15 s): every 20th cycle
            assert m.generate("In", max_tokens=2).prompt_ids == [818]


def test_no_leak_over_1000_open_close_cycles(f32):
    for i in range(100):  # warm-up: allocator pools, lazily loaded code
        cycle(f32, i % 20 == 0)
    gc.collect()
    before = rss_kib()
    for i in range(1000):
        cycle(f32, i % 20 == 0)
    gc.collect()
    grown = rss_kib() - before
    print(f"RSS after 100 warm-up cycles: {before} KiB; after 1,000 more: {grown:+d} KiB")
    # One cycle maps the 30 MB weights and model.so: a leak of either would be >= 30 GB here.
    assert grown < 8 * 1024, f"resident memory grew by {grown} KiB over 1,000 cycles"


def test_no_leak_over_200_reference_sessions():
    ref = kiln.reference(MODEL, ctx_len=16, prompt_len=4)
    for _ in range(50):
        with ref.session(threads=1) as s:
            s.prefill([818])
    gc.collect()
    before = rss_kib()
    for _ in range(200):  # 0.1 s each: the interpreter converts the weights to f64
        with ref.session(threads=1) as s:
            s.prefill([818])
    gc.collect()
    grown = rss_kib() - before
    print(f"reference sessions: {grown:+d} KiB over 200")
    assert grown < 8 * 1024
    ref.close()
