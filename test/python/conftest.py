"""Fixtures of the Python package's tests: the kiln driver of the build under test and a few
artifacts compiled once per run (ctest sets KILN_HOME to the build and PYTHONPATH to python/)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "kjv-gpt2-tiny"
sys.path.insert(0, str(ROOT / "python"))

import kiln  # noqa: E402
from kiln import _lib  # noqa: E402


@pytest.fixture(scope="session")
def kiln_bin():
    return _lib.kiln_binary()


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("kiln-python")


def run_kiln(*argv, check=True):
    p = subprocess.run([_lib.kiln_binary(), *map(str, argv)], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"kiln {' '.join(map(str, argv))} failed:\n{p.stderr}")
    return p


@pytest.fixture(scope="session")
def f32(work):
    """The trained model, f32, context 64 (prompt chunks of 16)."""
    return kiln.compile(MODEL, work / "f32", prompt_len=16, ctx_len=64)


@pytest.fixture(scope="session")
def int8(work):
    return kiln.compile(MODEL, work / "int8", pipeline="int8", prompt_len=16, ctx_len=64)


@pytest.fixture(scope="session")
def random_model(work):
    """A random-weight GPT-2 (make-checkpoint): its sampled text is arbitrary bytes."""
    run_kiln("make-checkpoint", "--preset", "tiny", "--seed", "3", "-o", work / "random")
    return work / "random"
