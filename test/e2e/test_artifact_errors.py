#!/usr/bin/env python3
"""Broken, foreign and stale artifacts, and prompts past the context, each
get a clear one-line error from `kiln run` (exit 1, no crash)."""
import os
import re
import shutil
import subprocess

from common import Checks, kiln, parse_args

args = parse_args()
c = Checks()
# Stamps of verified weights (docs/artifact.md#verified-once) go to a cache of this test's own.
cache = os.path.join(args.work, "err-cache")
shutil.rmtree(cache, ignore_errors=True)
os.environ["KILN_CACHE_DIR"] = cache
model = os.path.join(args.work, "err-ckpt")
good = os.path.join(args.work, "err-good")
shutil.rmtree(model, ignore_errors=True)
kiln(args, "make-checkpoint", "--preset", "tiny", "--n-layer", 1, "--n-positions", 16, "--seed", 3, "-o", model)
kiln(args, "compile", model, "-o", good, "--prompt-len", 4)


def variant(name, mutate):
    d = os.path.join(args.work, "err-" + name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(good, d)
    mutate(d)
    return d


def edit_manifest(pattern, repl):
    def mutate(d):
        path = os.path.join(d, "manifest.yaml")
        text = open(path).read()
        new = re.sub(pattern, repl, text, count=1)
        assert new != text, pattern
        open(path, "w").write(new)
    return mutate


def truncate(name, size):
    def mutate(d):
        with open(os.path.join(d, name), "r+b") as f:
            f.truncate(size)
    return mutate


def flip_byte(name, offset):
    def mutate(d):
        with open(os.path.join(d, name), "r+b") as f:
            f.seek(offset)
            b = f.read(1)
            f.seek(offset)
            f.write(bytes([b[0] ^ 0xFF]))
    return mutate


def expect_error(tag, argv, needle):
    p = subprocess.run([args.kiln, *map(str, argv)], capture_output=True, text=True, timeout=120)
    err = p.stderr.strip()
    ok = p.returncode == 1 and needle in err and len(err.splitlines()) == 1 and err.startswith("error: ")
    c.check(ok, f"{tag}: {err or '(no error)'}")


run = lambda d, *extra: ["run", d, "--prompt-ids", "1,2,3", "-n", 2, "--print-ids", *extra]
cases = [
    ("not an artifact", run(model), "manifest.yaml: missing: not a Kiln artifact"),
    ("missing dir", run(os.path.join(args.work, "nope")), "not an artifact directory"),
    ("newer format", run(variant("newer", edit_manifest(r"format_version: 1", "format_version: 99"))),
     "artifact format 99 is newer than this runtime reads (2)"),
    ("unknown specialization", run(variant("spec", edit_manifest(r"name: decode,", "name: decode_wide,"))),
     "unknown specialization 'decode_wide' (prefill, decode, decode_b<B> with batch B)"),
    ("batched decode misnamed", run(variant("specb", edit_manifest(r"name: decode, symbol: kiln_graph_decode, tokens: 1,",
                                                                   "name: decode, symbol: kiln_graph_decode, tokens: 1, batch: 4,"))),
     "specialization decode must have batch 1"),
    ("foreign manifest", run(variant("foreign", edit_manifest(r"format: kiln-artifact", "format: onnx-bundle"))),
     "not a Kiln artifact manifest"),
    ("unknown kv cache format", run(variant("kvfmt", edit_manifest(r"kv_cache: f32", "kv_cache: int2"))),
     "unknown kv_cache format 'int2' (f32, int8): a newer Kiln wrote it"),
    ("no heads", run(variant("noheads", edit_manifest(r"n_head: \d+", "n_head: 0"))), "model.n_head must be in 1..64, got 0"),
    ("heads that do not divide", run(variant("heads7", edit_manifest(r"n_head: \d+", "n_head: 7"))),
     "model.n_embd (64) is not divisible by n_head (7)"),
    ("negative layers", run(variant("layers", edit_manifest(r"n_layer: \d+", "n_layer: -2"))),
     "model.n_layer must be in 1..4096, got -2"),
    ("prompt past ctx", run(variant("plen", edit_manifest(r"prompt_len: \d+", "prompt_len: 99"))),
     "model.prompt_len must be in 1..16, got 99"),
    ("cache heads out of range", run(variant("cacheheads", edit_manifest(r"cache_heads: \[\d+", "cache_heads: [9"))),
     "cache_heads[0] must be in 1..4"),
    ("cache heads per layer", run(variant("cachelen", edit_manifest(r"cache_heads: \[4\]", "cache_heads: [4, 4]"))),
     "cache_heads must list one head count per layer (1)"),
    ("other target", run(variant("target", edit_manifest(r"name: cpu", "name: nvptx"))),
     "artifact is for target 'nvptx'"),
    ("other arch", run(variant("arch", edit_manifest(r"triple: x86_64[^,]*", "triple: aarch64-linux-gnu"))),
     "compiled for aarch64-linux-gnu and cannot run on this"),
    ("missing weights", run(variant("noweights", lambda d: os.remove(os.path.join(d, "weights.bin")))),
     "weights.bin: missing from the artifact"),
    ("truncated weights", run(variant("truncw", truncate("weights.bin", 1000))), "weights.bin: is 1000 bytes but"),
    ("corrupted weights", run(variant("flipw", flip_byte("weights.bin", 4096))), "weights.bin: checksum mismatch"),
    ("corrupted model.so", run(variant("flipso", flip_byte("model.so", 300))), "model.so: checksum mismatch"),
    ("truncated model.so", run(variant("truncso", truncate("model.so", 5000))), "model.so: is 5000 bytes but"),
    ("missing model.so", run(variant("noso", lambda d: os.remove(os.path.join(d, "model.so")))),
     "model.so: missing from the artifact"),
    ("malformed manifest", run(variant("yaml", lambda d: open(os.path.join(d, "manifest.yaml"), "w").write("a: [1,"))),
     "manifest is not valid YAML"),
    ("prompt past context", ["run", good, "--prompt-ids", ",".join(["7"] * 17), "--print-ids"],
     "the prompt has 17 tokens but the context holds 16"),
    ("token outside vocab", ["run", good, "--prompt-ids", "1,60000", "--print-ids"],
     "prompt token id 60000 is outside the model's vocabulary of 50257"),
    ("unknown kernels", run(good, "--kernels", "sse9"), "unknown kernel variant 'sse9'"),
    ("prompt-len at run time", run(good, "--prompt-len", "8"), "--prompt-len is fixed when the artifact is compiled"),
    ("compile: unknown target", ["compile", model, "-o", os.path.join(args.work, "x"), "--target", "tpu"],
     "unknown target 'tpu' (found: cpu"),
    ("compile: unknown backend option", ["compile", model, "-o", os.path.join(args.work, "x"), "--frobnicate=1"],
     "unknown option '--frobnicate'"),
    ("compile: unknown cpu", ["compile", model, "-o", os.path.join(args.work, "x"), "--cpu=pentium9"],
     "unknown CPU 'pentium9'"),
    ("compile: not a plugin", ["compile", model, "-o", os.path.join(args.work, "x"), "--load-backend-plugin",
                               os.path.join(good, "model.so")], "not a kiln backend plugin"),
]
bad_abi = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.kiln))), "test", "plugins",
                       "libkiln-test-bad-abi.so")
cases.append(("compile: plugin of another ABI", ["compile", model, "-o", os.path.join(args.work, "x"),
                                                 "--load-backend-plugin", bad_abi],
              "backend plugin ABI version 999 does not match this kiln's 1"))

# An artifact compiled for a CPU feature this host lacks is refused at load.
cpuinfo_names = {"avx512fp16": "avx512_fp16", "avx512bf16": "avx512_bf16", "avx512vnni": "avx512_vnni",
                 "avx512f": "avx512f", "avx2": "avx2"}
flags = set()
for line in open("/proc/cpuinfo"):
    if line.startswith("flags"):
        flags = set(line.split(":", 1)[1].split())
        break
missing = [f for f, flag in cpuinfo_names.items() if flag not in flags]
if missing:
    cases.append(("CPU lacks a required feature",
                  run(variant("feature", edit_manifest(r"required_features: \[\]", f"required_features: [{missing[0]}]"))),
                  f"which has {missing[0]}; this CPU lacks it"))
else:
    print(f"note: this CPU has all of {sorted(cpuinfo_names)}; the missing-feature case is not exercised")

for tag, argv, needle in cases:
    expect_error(tag, argv, needle)

# weights.bin is hashed once per file, not per open (docs/artifact.md#verified-once): the compile
# stamps the file it wrote (in the cache, by device and inode); an open matching the stamp skips
# the hash; a copy (another inode) is hashed and stamped; a byte changed in place after a stamped
# open is still refused, and so is one changed in a folder that was never stamped.
def ids_of(art):
    p = subprocess.run([args.kiln, *map(str, run(art))], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout.split()


def stamp_of(art):
    st = os.stat(os.path.join(art, "weights.bin"))
    return os.path.join(cache, "verified", f"{st.st_dev}-{st.st_ino}")


c.check(os.path.isfile(stamp_of(good)), "the compile stamps the weights.bin it wrote")
stamped = variant("stamp", lambda d: None)
c.check(not os.path.exists(stamp_of(stamped)), "a copied artifact has no stamp yet")
ok_ids = ids_of(stamped)
c.check(ok_ids[0] == 0 and os.path.isfile(stamp_of(stamped)), "its first open hashes it and stamps it")
written = os.stat(stamp_of(stamped)).st_mtime_ns
c.check(ids_of(stamped) == ok_ids and os.stat(stamp_of(stamped)).st_mtime_ns == written,
        "an open matching the stamp leaves it (it did not hash and rewrite)")
p = subprocess.run([args.kiln, *map(str, run(stamped))], capture_output=True, text=True, timeout=120,
                   env={**os.environ, "KILN_VERIFY_WEIGHTS": "always"})
c.check(p.returncode == 0 and os.stat(stamp_of(stamped)).st_mtime_ns != written, "KILN_VERIFY_WEIGHTS=always hashes anyway")
open(stamp_of(stamped), "w").write("kiln-verified 1 checksum=0 garbage\n")
c.check(ids_of(stamped) == ok_ids and "garbage" not in open(stamp_of(stamped)).read(),
        "a garbage stamp is ignored (hashed, then replaced)")
flip_byte("weights.bin", 4096)(stamped)
expect_error("weights changed in place after a stamped open", run(stamped), "weights.bin: checksum mismatch")
listed = set(re.findall(r"^  ([\w.]+): \{bytes:", open(os.path.join(good, "manifest.yaml")).read(), re.M))
c.check(set(os.listdir(good)) == listed | {"manifest.yaml"} and "weights.bin" in listed,
        f"the artifact folder holds only what the manifest lists: {sorted(os.listdir(good))}")
p = subprocess.run([args.kiln, *map(str, run(good))], capture_output=True, text=True, timeout=120,
                   env={k: v for k, v in os.environ.items() if k not in ("KILN_CACHE_DIR", "XDG_CACHE_HOME", "HOME")})
c.check(p.returncode == 0, "no cache folder at all: the open hashes and runs")

# A compile that cannot finish writing (RLIMIT_FSIZE stands in for a full disk: writes past
# 1 MiB, or half the .mlir, fail with EFBIG) fails with one line and leaves what was there: the old artifact
# intact and runnable, no new folder where there was none, no staging folder, the old .mlir.
def small_disk(limit):
    def cap():
        import resource
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return cap


def expect_compile_fails_cleanly(tag, argv, needle, limit=1 << 20):
    p = subprocess.run([args.kiln, *map(str, argv)], capture_output=True, text=True, timeout=300,
                       preexec_fn=small_disk(limit))
    err = p.stderr.strip()
    c.check(p.returncode == 1 and needle in err and len(err.splitlines()) == 1 and err.startswith("error: "),
            f"{tag}: {err or '(no error)'}")


kept = variant("kept", lambda d: None)
before = ids_of(kept)
stamp = open(os.path.join(kept, "manifest.yaml")).read()
expect_compile_fails_cleanly("compile over an artifact, disk full", ["compile", model, "-o", kept, "--prompt-len", 2],
                             kept + "/weights.bin: write failed: File too large")
c.check(open(os.path.join(kept, "manifest.yaml")).read() == stamp and ids_of(kept) == before and before[0] == 0,
        f"the old artifact is untouched and runs ({' '.join(before[1])})")
fresh = os.path.join(args.work, "err-fresh")
shutil.rmtree(fresh, ignore_errors=True)
expect_compile_fails_cleanly("compile to a new folder, disk full", ["compile", model, "-o", fresh],
                             fresh + "/weights.bin: write failed: File too large")
c.check(not os.path.exists(fresh), "no folder where there was none")
ir = os.path.join(args.work, "err-kept.mlir")
kiln(args, "compile", model, "--emit", "kiln", "-o", ir)
text_before = open(ir).read()
expect_compile_fails_cleanly("--emit kiln over a file, disk full", ["compile", model, "--emit", "kiln", "-o", ir],
                             ir + ": write failed: File too large", limit=len(text_before) // 2)
c.check(open(ir).read() == text_before, "the old .mlir is untouched")
leftovers = [f for f in os.listdir(args.work) if ".partial-" in f or ".tmp-" in f]
c.check(not leftovers, f"no staging files left behind: {leftovers}")
# A successful compile over an artifact replaces it whole (no file of the old one stays).
open(os.path.join(kept, "stale.txt"), "w").write("old")
kiln(args, "compile", model, "-o", kept, "--prompt-len", 2)
c.check(not os.path.exists(os.path.join(kept, "stale.txt")) and ids_of(kept) == before,
        "a compile over an artifact replaces the folder whole; same ids")

# Generation that fills the context stops with a note instead of failing.
p = subprocess.run([args.kiln, "run", good, "--prompt-ids", "1,2,3", "-n", "40", "--print-ids"], capture_output=True,
                   text=True)
c.check(p.returncode == 0 and len(p.stdout.split()) == 14 and "the context of 16 is full" in p.stderr,
        f"fills the context and stops: {len(p.stdout.split())} ids, {p.stderr.strip()!r}")
c.finish()
