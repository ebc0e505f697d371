"""Sessions, the tokenizer and generation, shared by compiled models and the reference."""

import codecs
import ctypes
import os
import time
import weakref
from ctypes import POINTER, byref, c_float, c_int32, c_size_t, c_void_p
from dataclasses import dataclass, field

import numpy as np

from . import _lib
from ._lib import Error


class _LogitsView:
    """Exposes a session's logits buffer to NumPy without a copy; holds the session's Handle so
    the buffer outlives every array made from it."""

    def __init__(self, address, count, owner):
        self._owner = owner
        self.__array_interface__ = {"data": (address, True), "shape": (count,), "typestr": "<f4", "version": 3}


def _ids_array(ids, what):
    try:
        a = np.ascontiguousarray(ids, dtype=np.int64)
    except (TypeError, ValueError):
        raise Error(f"{what}: token ids must be integers") from None
    if a.ndim != 1:
        raise Error(f"{what}: token ids must be a flat list")
    if a.size and (a.min() < 0 or a.max() > np.iinfo(np.int32).max):
        bad = int(a[(a < 0) | (a > np.iinfo(np.int32).max)][0])
        raise Error(f"{what}: token id {bad} is outside the vocabulary")
    return np.ascontiguousarray(a, dtype=np.int32)


class Tokenizer:
    """GPT-2's byte-level BPE from a folder's vocab.json and merges.txt (kiln_tokenizer_*)."""

    def __init__(self, directory):
        lib = _lib.runtime()
        h = c_void_p()
        _lib.check(lib.kiln_tokenizer_open(os.fsencode(directory), byref(h)))
        self._h = _lib.Handle(h.value, lib.kiln_tokenizer_close)
        self.vocab_size = lib.kiln_tokenizer_vocab_size(self._h.ptr)

    def encode(self, text):
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        lib = _lib.runtime()
        ids, count = POINTER(c_int32)(), c_size_t()
        _lib.check(lib.kiln_tokenizer_encode(self._h.ptr, data, len(data), byref(ids), byref(count)))
        try:
            return ids[: count.value]
        finally:
            lib.kiln_free(ids)

    def decode_bytes(self, ids):
        a = _ids_array(ids, "detokenize")
        lib = _lib.runtime()
        out, length = c_void_p(), c_size_t()
        _lib.check(lib.kiln_tokenizer_decode(self._h.ptr, a.ctypes.data_as(POINTER(c_int32)), a.size, byref(out),
                                             byref(length)))
        try:
            return ctypes.string_at(out.value, length.value)
        finally:
            lib.kiln_free(out)

    def decode(self, ids):
        # Invalid UTF-8 (ids ending inside a character) shows as U+FFFD, as the C API's users print it.
        return self.decode_bytes(ids).decode("utf-8", "replace")


class _Api:
    """The C functions a session calls: the runtime's kiln_session_* or the reference's."""

    def __init__(self, lib, prefix):
        for name in ("prefill", "decode", "reset", "position", "sample", "destroy"):
            setattr(self, name, getattr(lib, prefix + name))


class Session:
    """One sequence and its KV cache. Logits come back as read-only NumPy arrays that view the
    session's buffer: no copy, valid as long as the array lives, overwritten in place by the next
    prefill or decode (take .copy() to keep one step's). One thread at a time per session."""

    def __init__(self, owner, handle, api, vocab_size):
        # A weak reference: the model holds its sessions, and a session outliving its model object
        # keeps working (its Handle keeps the C artifact); model.close() closes it.
        self._owner, self._h, self._api, self._vocab = weakref.ref(owner), handle, api, vocab_size
        self._address = None

    def _ptr(self):
        if self._h is None or not self._h.ptr:
            raise Error("the session is closed")
        owner = self._owner()
        if owner is not None:
            owner._ptr()  # raises if the model was closed
        return self._h.ptr

    def _view(self, pointer):
        self._address = ctypes.cast(pointer, c_void_p).value
        return np.asarray(_LogitsView(self._address, self._vocab, self._h))

    def prefill(self, ids):
        """Appends the tokens (a list or array of ids) and returns the logits after the last."""
        a = _ids_array(ids, "prefill")
        logits = POINTER(c_float)()
        _lib.check(self._api.prefill(self._ptr(), a.ctypes.data_as(POINTER(c_int32)), a.size, byref(logits)))
        return self._view(logits)

    def decode(self, token):
        """Appends one token and returns the logits after it."""
        a = _ids_array([token], "decode")
        logits = POINTER(c_float)()
        _lib.check(self._api.decode(self._ptr(), int(a[0]), byref(logits)))
        return self._view(logits)

    @property
    def logits(self):
        """The logits after the last prefill or decode (a view; see the class)."""
        self._ptr()
        if self._address is None:
            raise Error("no logits yet: prefill first")
        return np.asarray(_LogitsView(self._address, self._vocab, self._h))

    def reset(self):
        """Forgets the sequence: position 0, cache cleared, sampling restarts from its seed."""
        _lib.check(self._api.reset(self._ptr()))
        self._address = None

    @property
    def position(self):
        return int(self._api.position(self._ptr()))

    def sample(self, temperature=0.0, top_k=0, top_p=1.0, seed=0):
        """The next id from the latest logits by the runtime's sampler (greedy at temperature 0)."""
        s = _lib.Sampling(float(temperature), int(top_k), float(top_p), int(seed))
        out = c_int32()
        _lib.check(self._api.sample(self._ptr(), byref(s), byref(out)))
        return out.value

    def close(self):
        """Frees the session (its memory goes once no logits array views it)."""
        self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class Result:
    """What generate() returns. `ids`: the generated tokens (an end-of-text token that stopped
    generation is not included; a token that completed a stop string is). `text`: their text, cut
    before a stop string. `finish_reason`: "stop" (end of text or a stop string) or "length"
    (max_tokens reached or the context full). `timings`: seconds and tokens per second."""

    text: str
    ids: list
    finish_reason: str
    prompt_ids: list
    seed: int
    timings: dict = field(default_factory=dict)


class Stream:
    """Iterates over UTF-8-complete pieces of generated text; .result once it is exhausted."""

    def __init__(self, pieces):
        self._pieces, self.result = pieces, None

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._pieces)


def _held_back(text, stops):
    """How many characters at the end of `text` could still begin a stop string."""
    keep = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), keep, -1):
            if text.endswith(s[:n]):
                keep = n
                break
    return keep


class Generator:
    """generate() and stream() over a class's sessions; subclasses provide _ptr(), session(),
    tokenizer, context_length and eos_token_id."""

    _default = None

    def tokenize(self, text):
        """Token ids of a string (GPT-2's byte-level BPE)."""
        self._ptr()
        return self.tokenizer.encode(text)

    def detokenize(self, ids):
        """The text of token ids (an incomplete UTF-8 character at the end shows as U+FFFD)."""
        self._ptr()
        return self.tokenizer.decode(ids)

    def _default_session(self):
        if self._default is None or self._default._h is None:
            self._default = self.session()
        return self._default

    def generate(self, prompt, max_tokens=32, temperature=0.0, top_k=0, top_p=1.0, seed=None, stop=None,
                 ignore_eos=False):
        """Generates from a prompt (text or token ids) as `kiln run` does: greedy at temperature 0
        (the same ids as `kiln run --print-ids`), else sampled by the runtime's sampler; seed=None
        picks a fresh seed (Result.seed). Stops after max_tokens, at the end-of-text token (unless
        ignore_eos), at any of the `stop` strings, or when the context is full."""
        stream = self.stream(prompt, max_tokens, temperature, top_k, top_p, seed, stop, ignore_eos)
        for _ in stream:
            pass
        return stream.result

    def stream(self, prompt, max_tokens=32, temperature=0.0, top_k=0, top_p=1.0, seed=None, stop=None,
               ignore_eos=False):
        """As generate(), yielding text as it completes: a piece never ends inside a UTF-8 character
        nor shows the start of a stop string that may still complete. Returns a Stream."""
        self._ptr()
        ids = self.tokenize(prompt) if isinstance(prompt, str) else [int(i) for i in _ids_array(prompt, "prompt")]
        if not ids:
            raise Error("the prompt is empty")
        if len(ids) > self.context_length:
            raise Error(f"the prompt has {len(ids)} tokens but the context holds {self.context_length}")
        if max_tokens < 0:
            raise Error("max_tokens must be >= 0")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if any(not isinstance(s, str) or not s for s in stops):
            raise Error("stop: each stop must be a non-empty string")
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little") >> 1 if temperature > 0 else 0
        _lib.Sampling(float(temperature), int(top_k), float(top_p), int(seed))  # types checked before any work
        stream = Stream(None)
        stream._pieces = self._pieces(stream, ids, max_tokens, (temperature, top_k, top_p, seed), stops, ignore_eos)
        return stream

    def _pieces(self, stream, prompt, max_tokens, sampling, stops, ignore_eos):
        session = self._default_session()
        session.reset()
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        t0 = time.perf_counter()
        session.prefill(prompt)
        t1 = time.perf_counter()
        generated, text, emitted, finish = [], "", 0, "length"
        eos = self.eos_token_id
        for i in range(max_tokens):
            token = session.sample(*sampling)
            if token == eos and not ignore_eos:
                finish = "stop"
                break
            generated.append(token)
            text += decoder.decode(self.tokenizer.decode_bytes([token]))
            cut = min((k for k in (text.find(s, emitted) for s in stops) if k >= 0), default=-1)
            if cut >= 0:
                text, finish, decoder = text[:cut], "stop", None
                break
            ready = len(text) - _held_back(text, stops)
            if ready > emitted:
                yield text[emitted:ready]
                emitted = ready
            if i + 1 == max_tokens or session.position >= self.context_length:
                break
            session.decode(token)
        if decoder:  # an incomplete character at the end shows as U+FFFD
            text += decoder.decode(b"", final=True)
        t2 = time.perf_counter()
        if len(text) > emitted:
            yield text[emitted:]
        decoded = max(0, len(generated) - 1)
        timings = {"prompt_tokens": len(prompt), "generated_tokens": len(generated), "prefill_s": t1 - t0,
                   "decode_s": t2 - t1, "prefill_tokens_per_s": len(prompt) / (t1 - t0) if t1 > t0 else 0.0,
                   "decode_tokens_per_s": decoded / (t2 - t1) if decoded and t2 > t1 else 0.0}
        stream.result = Result(text, generated, finish, list(prompt), sampling[3], timings)

