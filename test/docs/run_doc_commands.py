"""Runs every command of a documentation page, in order, so the page cannot rot.

Each ```sh block runs in bash (-e, -o pipefail) and each ```python block in python3, in one scratch
folder where models/, pipelines/ and build/ point into the source tree and the build under test, with
build/bin on PATH: what a user typing them at the repository root gets, without writing there. A
```text block right after a block is its expected output: each of its lines must appear, in order, as a
line of what the block printed (a line ending in "..." matches by its beginning; "..." alone skips).
A block preceded by <!-- needs: vulkan --> runs only where `kiln devices` lists a Vulkan device.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

FENCE = re.compile(r"^```(\w*)\s*$")


def blocks(path):
    """(language, code, expected output or None, needs, line) for each runnable block."""
    lines = open(path, encoding="utf-8").read().splitlines()
    fenced, i, needs = [], 0, None  # (lang, body, first line, fence-close line, needs)
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            text = lines[i].strip()
            if text.startswith("<!-- needs:"):
                needs = text[len("<!-- needs:"):-len("-->")].strip()
            elif text:
                needs = None
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        fenced.append((m.group(1), "\n".join(lines[i + 1:j]), i + 1, j, needs))
        needs, i = None, j + 1
    out = []
    for k, (lang, body, first, close, needs) in enumerate(fenced):
        if lang not in ("sh", "python"):
            continue
        expected = None
        if k + 1 < len(fenced) and fenced[k + 1][0] == "text" and \
                all(not line.strip() for line in lines[close + 1:fenced[k + 1][2] - 1]):
            expected = fenced[k + 1][1]
        out.append((lang, body, expected, needs, first))
    return out


def check_output(out, expected):
    got = [line.rstrip() for line in out.splitlines()]
    k = 0
    for want in expected.splitlines():
        want = want.rstrip()
        if not want or want == "...":
            continue
        prefix = want.endswith("...")
        stem = want[:-3] if prefix else want
        while k < len(got) and not (got[k].startswith(stem) if prefix else got[k] == stem):
            k += 1
        if k == len(got):
            return want
        k += 1
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("pages", nargs="+", help="PAGE.md, or PAGE.md:python to run only its python blocks")
    a = p.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    for name, target in [("models", os.path.join(a.source, "models")), ("pipelines", os.path.join(a.source, "pipelines")),
                         ("build", a.build)]:
        os.symlink(target, os.path.join(a.work, name))
    env = {**os.environ, "PATH": os.path.join(a.build, "bin") + ":/usr/bin:" + os.environ.get("PATH", ""),
           "PYTHONPATH": os.path.join(a.source, "python"), "KILN_HOME": a.build}
    devices = subprocess.run([os.path.join(a.build, "bin", "kiln"), "devices"], capture_output=True, text=True).stdout
    have = {"vulkan": "vulkan:\n  0:" in devices}
    ran = skipped = 0
    for spec in a.pages:
        page, _, only = spec.partition(":")
        for lang, body, expected, needs, line in blocks(page):
            if only and lang != only:
                continue
            where = f"{os.path.relpath(page, a.source)}:{line}"
            if needs and not have.get(needs, False):
                print(f"SKIP {where}: needs {needs}, which this machine lacks")
                skipped += 1
                continue
            argv = ["bash", "-euo", "pipefail", "-c", body] if lang == "sh" else ["/usr/bin/python3", "-c", body]
            r = subprocess.run(argv, cwd=a.work, env=env, capture_output=True, text=True, timeout=600)
            out = r.stdout + r.stderr
            if r.returncode != 0:
                sys.exit(f"FAIL {where}: exit {r.returncode}\n--- block ---\n{body}\n--- output ---\n{out}")
            if expected is not None:
                missing = check_output(out, expected)
                if missing is not None:
                    sys.exit(f"FAIL {where}: the page shows '{missing}', the command did not print it\n"
                             f"--- block ---\n{body}\n--- output ---\n{out}")
            print(f"ok   {where} ({lang}{', output checked' if expected is not None else ''})")
            ran += 1
    print(f"{ran} blocks ran, {skipped} skipped")


if __name__ == "__main__":
    main()
