"""The compiler's commands (kiln import / compile / eval / pipelines), run as the `kiln` driver
so a compile's memory and any crash stay out of the caller's process; errors become kiln.Error
with the driver's one-line message."""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import yaml

from . import _lib
from ._lib import Error


def _run(args, what):
    cmd = [_lib.kiln_binary()] + [os.fspath(a) for a in args]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise Error(f"{cmd[0]}: cannot run: {e}") from None
    if p.returncode != 0:
        lines = [line for line in p.stderr.splitlines() if line.strip()]
        message = lines[-1] if lines else f"{what} failed (exit {p.returncode})"
        raise Error(message[len("error: "):] if message.startswith("error: ") else message)
    return p.stdout


class Artifact:
    """A compiled artifact directory (what kiln.compile returns); open it with kiln.Model(artifact)
    or artifact.open()."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not (Path(self.path) / "manifest.yaml").is_file():
            raise Error(f"{self.path}: not a Kiln artifact (no manifest.yaml)")
        try:
            manifest = yaml.safe_load((Path(self.path) / "manifest.yaml").read_text())
        except (OSError, yaml.YAMLError) as e:
            raise Error(f"{self.path}/manifest.yaml: cannot read: {e}") from None
        target = manifest.get("target") if isinstance(manifest, dict) else None
        self.target = target.get("name", "") if isinstance(target, dict) else str(target or "")
        self.manifest = manifest

    def open(self, threads=None, kernels=None):
        from .model import Model
        return Model(self, threads=threads, kernels=kernels)

    @property
    def size_bytes(self):
        """Bytes of every file in the artifact."""
        return sum(f.stat().st_size for f in Path(self.path).rglob("*") if f.is_file())

    def __fspath__(self):
        return self.path

    def __repr__(self):
        return f"<Artifact {self.path} ({self.target or 'unknown target'})>"


def _pipeline_args(pipeline):
    if pipeline is None:
        return []
    if isinstance(pipeline, (list, tuple)):
        if not pipeline or any(not isinstance(p, str) or not p for p in pipeline):
            raise Error("pipeline: a list of pass names (strings) must not be empty")
        return ["--passes", ",".join(pipeline)]
    return ["--pipeline", os.fspath(pipeline)]


def _adapter_args(adapter):
    if adapter is None:
        return []
    if isinstance(adapter, dict):  # switchable adapters, selected per session
        return ["--adapters", ",".join(f"{name}={os.fspath(d)}" for name, d in adapter.items())]
    return ["--adapter", os.fspath(adapter)]


def compile(model_dir, out, target="cpu", pipeline=None, calibration=None, prompt_len=None, ctx_len=None,
            adapter=None, decode_batch=None, emit=None, options=None):
    """Compiles a Hugging Face GPT-2 folder (or a kiln .mlir) into an artifact directory `out`.
    pipeline: a shipped pipeline's name ("int8"; see kiln.pipelines()), a YAML file, or a list of
    passes. calibration: a text file for calibrating passes (GPTQ, static W8A8, KD). adapter: a
    PEFT folder to merge, or {name: folder} for switchable adapters. decode_batch: e.g. [1, 2, 4, 8].
    emit: "kiln" writes the IR after the passes to `out` instead (a file; returns its path).
    options: backend options, e.g. {"onnx-opset": 17} for --onnx-opset=17."""
    args = ["compile", model_dir, "-o", out, "--target", target]
    args += _pipeline_args(pipeline)
    if calibration is not None:
        args += ["--calibration", calibration]
    if prompt_len is not None:
        args += ["--prompt-len", str(int(prompt_len))]
    if ctx_len is not None:
        args += ["--ctx-len", str(int(ctx_len))]
    args += _adapter_args(adapter)
    if decode_batch is not None:
        args += ["--decode-batch", ",".join(str(int(b)) for b in decode_batch)]
    if emit is not None:
        args += ["--emit", emit]
    for key, value in (options or {}).items():
        args.append(f"--{key}={value}")
    _run(args, "kiln compile")
    if emit is not None and emit != "artifact":
        return os.fspath(out)
    return Artifact(out)


def import_model(model_dir, prompt_len=None, ctx_len=None):
    """The kiln IR of a Hugging Face GPT-2 folder, as text (weights referenced, not inlined)."""
    args = ["import", model_dir]
    if prompt_len is not None:
        args += ["--prompt-len", str(int(prompt_len))]
    if ctx_len is not None:
        args += ["--ctx-len", str(int(ctx_len))]
    return _run(args, "kiln import")


def pipelines(describe=False):
    """The shipped pipelines' names (describe=True: {name: description})."""
    found = json.loads(_run(["pipelines", "--json"], "kiln pipelines"))
    if describe:
        return {p["name"]: p["description"] for p in found}
    return [p["name"] for p in found]


def _model_path(m):
    if isinstance(m, (str, os.PathLike)):
        return os.fspath(m)
    if hasattr(m, "path"):  # Artifact, Model, Reference
        return os.fspath(m.path)
    raise Error(f"eval: {m!r} is not a model folder, .mlir file, artifact or kiln.Model")


def eval(model, text, window=256, max_tokens=None, against=None, pipeline=None, pipelines=None, calibration=None,
         adapter=None, threads=None):
    """Perplexity of `model` on `text` over windows of `window` tokens (kiln eval), and with
    `against` (a teacher: folder, .mlir, artifact or Model) the KL divergence KL(teacher || model)
    and top-1 agreement. `model`: a folder or .mlir (run on the reference interpreter, after
    `pipeline` if given), or an artifact / kiln.Model (on the runtime; onnx artifacts in ONNX
    Runtime). `text`: a file's path or the text itself. pipelines=[...]: one result per pipeline,
    the teacher scoring each window once for all. Returns dict(perplexity, kl, top1_agreement,
    tokens, window) (kl and top1_agreement None without a teacher), or a list with `pipelines`."""
    if pipeline is not None and pipelines is not None:
        raise Error("eval: give pipeline or pipelines, not both")
    with tempfile.TemporaryDirectory(prefix="kiln-eval-") as tmp:
        if isinstance(text, os.PathLike) or (isinstance(text, str) and "\n" not in text and len(text) < 4096
                                             and os.path.isfile(text)):
            text_file = os.fspath(text)
        elif isinstance(text, str):
            text_file = os.path.join(tmp, "text.txt")
            with open(text_file, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            raise Error("eval: text must be a path or a string")
        args = ["eval", _model_path(model), "--text", text_file, "--json"]
        if window is not None:
            args += ["--window", str(int(window))]
        if max_tokens is not None:
            args += ["--max-tokens", str(int(max_tokens))]
        if against is not None:
            args += ["--against", _model_path(against)]
        if pipelines is not None:
            if isinstance(pipelines, str) or not pipelines:
                raise Error("eval: pipelines must be a non-empty list of names or files")
            args += ["--pipelines", ",".join(os.fspath(p) for p in pipelines)]
        args += _pipeline_args(pipeline)
        if calibration is not None:
            args += ["--calibration", calibration]
        if adapter is not None:
            args += ["--adapter", os.fspath(adapter)]
        if threads is not None:
            args += ["--threads", str(int(threads))]
        rows = [json.loads(line) for line in _run(args, "kiln eval").splitlines() if line.strip()]
    for r in rows:
        r.pop("model", None)
    return rows if pipelines is not None else rows[0]


def run(artifact, prompt, max_tokens=32, temperature=0.0, top_k=0, top_p=1.0, seed=0, device=None):
    """Generated ids of an artifact of any target through `kiln run` (an onnx artifact runs in ONNX
    Runtime, which kiln.Model does not open; cpu/vulkan/cuda ones as kiln.Model runs them).
    prompt: text or ids. Returns the ids (kiln run does not stop at the end-of-text id)."""
    args = ["run", _model_path(artifact), "-n", str(int(max_tokens)), "--json", "--temperature", str(temperature),
            "--top-k", str(int(top_k)), "--top-p", str(top_p), "--seed", str(int(seed))]
    if isinstance(prompt, str):
        args += ["--prompt", prompt]
    else:
        args += ["--prompt-ids", ",".join(str(int(i)) for i in prompt)]
    if device is not None:
        args += ["--device", str(int(device))]
    return json.loads(_run(args, "kiln run").strip().splitlines()[-1])["ids"]
