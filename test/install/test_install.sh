#!/usr/bin/env bash
# Installs Kiln into a fresh prefix, compiles a model with the installed kiln,
# builds examples/run-artifact against the installed header and library only,
# and checks it generates the same ids as `kiln run`.
set -euo pipefail
build="$1"; source="$2"; work="$3"
prefix="$work/prefix"
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
"$prefix/bin/kiln" make-checkpoint --preset tiny --n-layer 2 --seed 4 -o "$work/ckpt" 2> /dev/null
"$prefix/bin/kiln" compile "$work/ckpt" --prompt-len 8 -o "$work/art" 2> /dev/null
# Shipped pipelines by name from the install's share/kiln/pipelines.
[ -f "$prefix/share/kiln/pipelines/int8.yaml" ]
"$prefix/bin/kiln" compile "$work/ckpt" --prompt-len 8 --pipeline int8 --emit kiln -o "$work/int8.mlir" 2> /dev/null
grep -q 'format = "int8"' "$work/int8.mlir"
cc -std=c11 -Wall -Werror "$source/examples/run-artifact/run_artifact.c" -I"$prefix/include" -L"$prefix/lib" \
  -lkiln_runtime -Wl,-rpath,"$prefix/lib" -o "$work/run_artifact"
got=$("$work/run_artifact" "$work/art" "Hello world" 12 | head -1)
want=$("$prefix/bin/kiln" run "$work/art" --prompt "Hello world" -n 12 --print-ids)
echo "example: $got"
echo "kiln:    $want"
[ -n "$got" ] && [ "$got" = "$want" ]
# The installed onnx backend, and its ONNX Runtime driver, give the same ids (ORT from the build's setup).
"$prefix/bin/kiln" compile "$work/ckpt" --target onnx --prompt-len 8 -o "$work/onnx" 2> /dev/null
got=$(KILN_ORT_DIR="$build/ort" node "$prefix/lib/kiln/onnx/kiln-ort.js" "$work/onnx" --prompt-ids 15496,995 -n 12 \
  | python3 -c 'import json, sys; print(" ".join(map(str, json.load(sys.stdin)["ids"])))')
want=$("$prefix/bin/kiln" run "$work/art" --prompt-ids 15496,995 -n 12 --print-ids)
echo "onnx in ORT: $got"
[ -n "$got" ] && [ "$got" = "$want" ]
# The C++ wrapper compiles against the installed headers alone.
printf '#include <kiln/runtime.hpp>\nint main(int c, char **v) { kiln::Artifact a(v[1]); kiln::Session s(a, 1);\n  auto ids = a.tokenize("Hello"); s.prefill(ids); return s.sample() < 0; }\n' > "$work/wrapper.cpp"
c++ -std=c++17 "$work/wrapper.cpp" -I"$prefix/include" -L"$prefix/lib" -lkiln_runtime -Wl,-rpath,"$prefix/lib" -o "$work/wrapper"
"$work/wrapper" "$work/art"

# examples/pass-plugin builds out of tree against the installed Kiln (find_package(Kiln))
# and its pass runs from kiln-opt and, by name, in a kiln compile pipeline.
cmake -S "$source/examples/pass-plugin" -B "$work/plugin" -G Ninja -DKiln_DIR="$prefix/lib/cmake/Kiln" \
  -DCMAKE_CXX_COMPILER=clang++-19 > "$work/plugin-configure.log"
cmake --build "$work/plugin" > "$work/plugin-build.log"
"$prefix/bin/kiln-opt" --load-pass-plugin="$work/plugin/KilnMergeScales.so" \
  --pass-pipeline="builtin.module(func.func(kiln-example-merge-scales))" "$source/examples/pass-plugin/test.mlir" \
  | FileCheck-19 "$source/examples/pass-plugin/test.mlir"
"$prefix/bin/kiln" compile "$work/ckpt" --prompt-len 8 -o "$work/art-plugin" \
  --load-pass-plugin "$work/plugin/KilnMergeScales.so" --passes "kiln-example-merge-scales,kiln-fuse-linear-gelu"
grep -q "kiln-example-merge-scales" "$work/art-plugin/manifest.yaml"
got=$("$prefix/bin/kiln" run "$work/art-plugin" --prompt "Hello world" -n 12 --print-ids)
[ "$got" = "$want" ]

# The Python package from the install, found where the install put it, finding the install
# relative to itself (no KILN_HOME, no kiln on PATH); then pip-installed into a venv.
pysite=$(ls -d "$prefix"/lib/python3*/dist-packages)
pyprog='import kiln, sys; m = kiln.Model(kiln.compile(sys.argv[1], sys.argv[2], prompt_len=8))
print(" ".join(map(str, m.generate("Hello world", max_tokens=12, ignore_eos=True).ids)))'
got=$(env -u KILN_HOME PATH=/usr/bin:/bin PYTHONPATH="$pysite" /usr/bin/python3 -c "$pyprog" "$work/ckpt" "$work/py-art")
echo "python (installed path): $got"
[ "$got" = "$want" ]
if /usr/bin/python3 -m venv --system-site-packages "$work/venv" > /dev/null 2>&1 && \
   "$work/venv/bin/python" -c 'import setuptools' 2> /dev/null; then
  cp -r "$source/python" "$work/python-src" # pip builds in the source folder: keep the tree clean
  "$work/venv/bin/pip" install --no-build-isolation --no-index -q "$work/python-src" > "$work/pip.log" 2>&1
  got=$(cd "$work" && env -u KILN_HOME PATH="$prefix/bin:/usr/bin:/bin" "$work/venv/bin/python" -c "$pyprog" \
    "$work/ckpt" "$work/py-art2")
  echo "python (pip install): $got"
  [ "$got" = "$want" ]
else
  echo "SKIP: pip install ./python (python3-venv or python3-setuptools missing: scripts/setup.sh installs them)"
fi
echo "3 passed, 0 failed"
