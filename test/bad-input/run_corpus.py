#!/usr/bin/env python3
"""Runs every bad-input case: kiln must exit non-zero with a one-line error that
contains the expected text, and must not crash (signal, sanitizer report)."""
import json, os, subprocess, sys

kiln, root = sys.argv[1], sys.argv[2]
cases = json.load(open(os.path.join(root, "cases.json")))
failed = 0
for case in cases:
    model = os.path.join(root, case["name"])
    cmd = [kiln] + [a.replace("MODEL", model) for a in case["command"]]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    err = p.stderr.strip()
    problems = []
    if p.returncode < 0 or "Sanitizer" in err or "runtime error" in err:
        problems.append(f"crashed (rc {p.returncode})")
    if case["expect"] is None:
        if p.returncode != 0:
            problems.append(f"the valid control case failed: {err}")
    else:
        if p.returncode != 1:
            problems.append(f"exit status {p.returncode}, expected 1")
        if case["expect"] not in err:
            problems.append(f"expected {case['expect']!r} in the error")
        if len(err.splitlines()) != 1 or not err.startswith("error: "):
            problems.append("the error is not one 'error: ...' line")
    status = "FAIL" if problems else "ok"
    failed += bool(problems)
    print(f"{status:4} {case['name']}: {err.splitlines()[0] if err else '(no stderr)'}")
    for prob in problems:
        print(f"     {prob}\n     stderr: {err[:2000]}")
print(f"{len(cases) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
