"""Kiln from Python: compile GPT-2 ahead of time, run the artifacts, evaluate, compare with the
reference interpreter.

    import kiln
    art = kiln.compile("models/kjv-gpt2-tiny", "out/tiny-int8", pipeline="int8")
    with kiln.Model(art) as m:
        print(m.generate("In the beginning", max_tokens=20).text)

docs/python.md documents the API; notebooks/gpt2.ipynb walks through it.
"""

from ._lib import Error
from .compiler import Artifact, compile, eval, import_model, pipelines, run
from .model import Model, ModelSession, Reference, reference
from .session import Result, Session, Stream, Tokenizer

__version__ = "0.1.0"

__all__ = ["Artifact", "Error", "Model", "ModelSession", "Reference", "Result", "Session", "Stream", "Tokenizer",
           "compile", "eval", "import_model", "pipelines", "reference", "run"]
