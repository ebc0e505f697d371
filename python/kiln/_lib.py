"""Finding Kiln's build or install, and the ctypes declarations of its C APIs.

The package is pure Python over two C APIs (docs/python.md says why ctypes):
kiln/runtime.h in libkiln_runtime.so (artifacts, sessions, tokenizer) and
kiln/reference.h in libkiln-compiler.so (the reference interpreter; it links
MLIR, so it is loaded only when a reference model is opened). The compiler's
commands (import, compile, eval, pipelines) run as the `kiln` driver.
"""

import ctypes
import os
import shutil
from ctypes import POINTER, Structure, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t, c_uint64, c_void_p
from pathlib import Path

RUNTIME_API = (1, 4)  # the kiln/runtime.h version this package needs (major, minimum minor)


class Error(RuntimeError):
    """An error from Kiln: the C API's or the compiler's one-line message."""


def _is_prefix(p):
    return (p / "bin" / "kiln").is_file() and (p / "lib" / "libkiln_runtime.so").is_file()


def prefix():
    """The folder holding bin/kiln and lib/libkiln_runtime.so: $KILN_HOME, the install this
    package sits in, the `kiln` on PATH, or the build/ of the source tree it sits in."""
    env = os.environ.get("KILN_HOME")
    if env:
        if not _is_prefix(Path(env)):
            raise Error(f"KILN_HOME={env}: no bin/kiln and lib/libkiln_runtime.so there (a build/ or install folder)")
        return Path(env)
    here = Path(__file__).resolve().parent
    candidates = []
    if len(here.parents) > 3:  # <prefix>/lib/pythonX.Y/dist-packages/kiln
        candidates.append(here.parents[3])
    on_path = shutil.which("kiln")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parents[1])
    candidates.append(here.parents[1] / "build")  # <repo>/python/kiln -> <repo>/build
    for c in candidates:
        if _is_prefix(c):
            return c
    raise Error("cannot find Kiln: set KILN_HOME to a folder with bin/kiln and lib/libkiln_runtime.so "
                "(the repository's build/ after scripts/build.sh, or an install prefix)")


def kiln_binary():
    return str(prefix() / "bin" / "kiln")


class OpenOptions(Structure):
    _fields_ = [("kernels", c_char_p), ("skip_weight_checksum", c_int)]


class SessionOptions(Structure):
    _fields_ = [("threads", c_int32)]


class Sampling(Structure):
    _fields_ = [("temperature", c_float), ("top_k", c_int32), ("top_p", c_float), ("seed", c_uint64)]


class ReferenceOptions(Structure):
    _fields_ = [("ctx_len", c_int64), ("prompt_len", c_int64), ("adapter", c_char_p)]


_P = POINTER(c_void_p)
_IDS = POINTER(c_int32)
_LOGITS = POINTER(POINTER(c_float))

# name: (restype, argtypes). Statuses are c_void_p: NULL is success.
_RUNTIME = {
    "kiln_status_message": (c_char_p, [c_void_p]),
    "kiln_status_free": (None, [c_void_p]),
    "kiln_artifact_open": (c_void_p, [c_char_p, POINTER(OpenOptions), _P]),
    "kiln_artifact_close": (None, [c_void_p]),
    "kiln_artifact_vocab_size": (c_int64, [c_void_p]),
    "kiln_artifact_context_length": (c_int64, [c_void_p]),
    "kiln_artifact_prompt_length": (c_int64, [c_void_p]),
    "kiln_artifact_weight_bytes": (c_uint64, [c_void_p]),
    "kiln_artifact_kernels": (c_char_p, [c_void_p]),
    "kiln_artifact_target": (c_char_p, [c_void_p]),
    "kiln_artifact_device": (c_char_p, [c_void_p]),
    "kiln_artifact_eos_token_id": (c_int64, [c_void_p]),
    "kiln_artifact_adapter_count": (c_int64, [c_void_p]),
    "kiln_artifact_adapter_name": (c_char_p, [c_void_p, c_int64]),
    "kiln_session_create": (c_void_p, [c_void_p, POINTER(SessionOptions), _P]),
    "kiln_session_destroy": (None, [c_void_p]),
    "kiln_session_prefill": (c_void_p, [c_void_p, _IDS, c_size_t, _LOGITS]),
    "kiln_session_decode": (c_void_p, [c_void_p, c_int32, _LOGITS]),
    "kiln_session_reset": (c_void_p, [c_void_p]),
    "kiln_session_position": (c_int64, [c_void_p]),
    "kiln_session_sample": (c_void_p, [c_void_p, POINTER(Sampling), POINTER(c_int32)]),
    "kiln_session_set_adapter": (c_void_p, [c_void_p, c_char_p]),
    "kiln_session_adapter": (c_char_p, [c_void_p]),
    "kiln_tokenizer_open": (c_void_p, [c_char_p, _P]),
    "kiln_tokenizer_close": (None, [c_void_p]),
    "kiln_tokenizer_vocab_size": (c_int64, [c_void_p]),
    "kiln_tokenizer_encode": (c_void_p, [c_void_p, c_char_p, c_size_t, POINTER(_IDS), POINTER(c_size_t)]),
    "kiln_tokenizer_decode": (c_void_p, [c_void_p, _IDS, c_size_t, POINTER(c_void_p), POINTER(c_size_t)]),
    "kiln_free": (None, [c_void_p]),
}

_REFERENCE = {
    "kiln_reference_open": (c_void_p, [c_char_p, POINTER(ReferenceOptions), _P]),
    "kiln_reference_close": (None, [c_void_p]),
    "kiln_reference_vocab_size": (c_int64, [c_void_p]),
    "kiln_reference_context_length": (c_int64, [c_void_p]),
    "kiln_reference_prompt_length": (c_int64, [c_void_p]),
    "kiln_reference_eos_token_id": (c_int64, [c_void_p]),
    "kiln_reference_checkpoint_dir": (c_char_p, [c_void_p]),
    "kiln_reference_session_create": (c_void_p, [c_void_p, c_int32, _P]),
    "kiln_reference_session_destroy": (None, [c_void_p]),
    "kiln_reference_session_prefill": (c_void_p, [c_void_p, _IDS, c_size_t, _LOGITS]),
    "kiln_reference_session_decode": (c_void_p, [c_void_p, c_int32, _LOGITS]),
    "kiln_reference_session_reset": (c_void_p, [c_void_p]),
    "kiln_reference_session_position": (c_int64, [c_void_p]),
    "kiln_reference_session_sample": (c_void_p, [c_void_p, POINTER(Sampling), POINTER(c_int32)]),
}

_loaded = {}


def _load(name, table):
    if name in _loaded:
        return _loaded[name]
    path = prefix() / "lib" / name
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise Error(f"{path}: cannot load: {e}") from None
    for fn, (res, args) in table.items():
        try:
            f = getattr(lib, fn)
        except AttributeError:
            raise Error(f"{path}: has no {fn}: the library is older than this package "
                        f"(needs C API {RUNTIME_API[0]}.{RUNTIME_API[1]}); rebuild Kiln") from None
        f.restype, f.argtypes = res, args
    _loaded[name] = lib
    return lib


def runtime():
    """libkiln_runtime.so: MLIR-free, cheap to load."""
    return _load("libkiln_runtime.so", _RUNTIME)


def reference():
    """libkiln-compiler.so, for the reference interpreter (loads MLIR)."""
    runtime()  # its kiln_status_* free the statuses both libraries return
    return _load("libkiln-compiler.so", _REFERENCE)


def check(status):
    """Raises Error with the status's message (and frees it) when a call failed."""
    if status:
        lib = runtime()
        message = lib.kiln_status_message(status).decode("utf-8", "replace")
        lib.kiln_status_free(status)
        raise Error(message)


def text(ptr):
    return ptr.decode("utf-8", "replace") if ptr else ""


class Handle:
    """Owns one C object and frees it when the last Python reference to it goes: views of
    its memory (logits arrays) and the objects built on it (an artifact's sessions) hold
    their Handle, so nothing is freed under them. `deps` are handles that must outlive it:
    one whose finalizer runs first (the garbage collector finalizes a cycle's objects in any
    order) waits, and is freed with its last dependent."""

    __slots__ = ("ptr", "_free", "_deps", "_users", "_dead", "__weakref__")

    def __init__(self, ptr, free, deps=()):
        self.ptr, self._free, self._deps, self._users, self._dead = ptr, free, tuple(deps), 0, False
        for d in self._deps:
            d._users += 1

    def _release(self):
        if self._dead and self._users == 0 and self.ptr:
            ptr, self.ptr = self.ptr, None
            self._free(ptr)
            for d in self._deps:
                d._users -= 1
                d._release()

    def __del__(self):
        self._dead = True
        self._release()
