"""Compiled artifacts on the runtime (kiln.Model) and the reference interpreter (kiln.reference)."""

import os
import weakref
from ctypes import byref, c_void_p
from pathlib import Path

from . import _lib
from ._lib import Error
from .session import Generator, Session, Tokenizer, _Api


class _Owner(Generator):
    """What Model and Reference share: a C handle, its sessions, close() and `with`."""

    _h = None
    _tokenizer = None

    @property
    def tokenizer(self):
        """The model's Tokenizer, loaded on first use (about 0.15 s for GPT-2's 50k merges)."""
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self._tokenizer_dir)
        return self._tokenizer

    def _ptr(self):
        if self._h is None or not self._h.ptr:
            raise Error(f"{self.path}: the model is closed")
        return self._h.ptr

    def _register(self, session):
        self._sessions.add(session)
        return session

    def close(self):
        """Closes the model and every session made from it (arrays of logits stay readable; their
        memory goes with the last of them)."""
        for s in list(self._sessions):
            s.close()
        self._default = None
        self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._h is None else f"context {self.context_length}"
        return f"<{type(self).__name__} {self.path} ({state})>"


class Model(_Owner):
    """A compiled artifact opened on the runtime: Model("out/tiny"), or Model(kiln.compile(...)).
    threads: the default sessions' thread count (None: all cores). kernels: force a cpu kernel
    variant ("generic", "avx2", "avx512"; None picks the best the CPU has)."""

    def __init__(self, artifact, threads=None, kernels=None):
        self.path = os.fspath(getattr(artifact, "path", artifact))
        lib = _lib.runtime()
        options = _lib.OpenOptions(kernels.encode() if kernels else None, 0)
        h = c_void_p()
        _lib.check(lib.kiln_artifact_open(os.fsencode(self.path), byref(options), byref(h)))
        self._h = _lib.Handle(h.value, lib.kiln_artifact_close)
        p = self._h.ptr
        self.threads = int(threads or 0)
        self.vocab_size = int(lib.kiln_artifact_vocab_size(p))
        self.context_length = int(lib.kiln_artifact_context_length(p))
        self.prompt_length = int(lib.kiln_artifact_prompt_length(p))
        self.weight_bytes = int(lib.kiln_artifact_weight_bytes(p))
        self.eos_token_id = int(lib.kiln_artifact_eos_token_id(p))
        self.target = _lib.text(lib.kiln_artifact_target(p))
        self.kernels = _lib.text(lib.kiln_artifact_kernels(p))
        self.device = _lib.text(lib.kiln_artifact_device(p))
        self.adapters = [_lib.text(lib.kiln_artifact_adapter_name(p, i)) for i in range(lib.kiln_artifact_adapter_count(p))]
        self._tokenizer_dir = self.path
        self._api = _Api(lib, "kiln_session_")
        self._sessions = weakref.WeakSet()

    def session(self, threads=None, adapter=None):
        """A new session (its own KV cache) for custom decoding; `adapter`: one of self.adapters."""
        lib = _lib.runtime()
        options = _lib.SessionOptions(int(self.threads if threads is None else threads))
        h = c_void_p()
        _lib.check(lib.kiln_session_create(self._ptr(), byref(options), byref(h)))
        s = ModelSession(self, _lib.Handle(h.value, lib.kiln_session_destroy, (self._h,)), self._api, self.vocab_size)
        if adapter is not None:
            s.set_adapter(adapter)
        return self._register(s)


class ModelSession(Session):
    """A runtime session; with switchable adapters (kiln compile --adapters) it can change adapter."""

    def set_adapter(self, name):
        """Selects a switchable adapter for the tokens fed after this (None or "none": the base)."""
        _lib.check(_lib.runtime().kiln_session_set_adapter(self._ptr(), name.encode() if name else None))

    @property
    def adapter(self):
        return _lib.text(_lib.runtime().kiln_session_adapter(self._ptr()))


class Reference(_Owner):
    """The reference interpreter (double precision, exact, slow): what `kiln run --reference`
    runs. `path`: a Hugging Face GPT-2 folder or a kiln .mlir file (kiln compile --emit kiln
    gives one after a pipeline). ctx_len / prompt_len (a folder only): the KV-cache length
    (default n_positions) and prefill chunk (default 16). adapter: a PEFT folder merged into a
    folder's weights, or the switchable adapter of a .mlir to run."""

    def __init__(self, path, ctx_len=None, prompt_len=None, adapter=None, threads=None):
        self.path = os.fspath(path)
        lib = _lib.reference()
        options = _lib.ReferenceOptions(int(ctx_len or 0), int(prompt_len or 0),
                                        os.fsencode(adapter) if adapter else None)
        h = c_void_p()
        _lib.check(lib.kiln_reference_open(os.fsencode(self.path), byref(options), byref(h)))
        self._h = _lib.Handle(h.value, lib.kiln_reference_close)
        p = self._h.ptr
        self.threads = int(threads or 0)
        self.vocab_size = int(lib.kiln_reference_vocab_size(p))
        self.context_length = int(lib.kiln_reference_context_length(p))
        self.prompt_length = int(lib.kiln_reference_prompt_length(p))
        self.eos_token_id = int(lib.kiln_reference_eos_token_id(p))
        checkpoint = _lib.text(lib.kiln_reference_checkpoint_dir(p))
        if not checkpoint or not (Path(checkpoint) / "vocab.json").is_file():
            raise Error(f"{self.path}: no tokenizer (vocab.json) in its checkpoint folder '{checkpoint}'")
        self._tokenizer_dir = checkpoint
        self._api = _Api(lib, "kiln_reference_session_")
        self._sessions = weakref.WeakSet()

    def session(self, threads=None):
        """A new session of the interpreter (its own KV cache)."""
        lib = _lib.reference()
        h = c_void_p()
        _lib.check(lib.kiln_reference_session_create(self._ptr(), int(self.threads if threads is None else threads),
                                                     byref(h)))
        return self._register(Session(self, _lib.Handle(h.value, lib.kiln_reference_session_destroy, (self._h,)),
                                      self._api, self.vocab_size))


def reference(path, **options):
    """kiln.reference(model_dir): the reference interpreter with generate(), stream(), session()."""
    return Reference(path, **options)
