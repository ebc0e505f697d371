#!/usr/bin/env python3
"""Writes a GPU artifact's weights.bin from the checkpoint it was compiled from (numpy only).

    pack_weights.py MODEL_DIR ARTIFACT_DIR

The vulkan and cuda artifacts store weights as the manifest's `weights` list says (one entry per
device buffer; backends/gpu/Schedule.cpp): `rowmajor` f32 values, `rowmajor-f16-words` / `-bf16-`
16-bit values two to a little-endian 32-bit word (rows padded to an even length), optionally
`rows[a:b]` of a split table, and `zero_bias.N`. A GPT-2 124M artifact is 250-500 MB of weights:
too large to carry to a device machine, so bench/gpu/check.sh compiles nothing there. It
regenerates the checkpoint with `kiln make-checkpoint` (deterministic by seed) and repacks it
here; the runtime then checks weights.bin against the manifest's checksum when it opens the
artifact. Integer formats (scales, zero points) are not repacked: compile those where they run."""
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "peers"))
import hfgpt2  # noqa: E402


def manifest_weights(path):
    """The manifest's weights entries (flow maps, one per line), parsed without a YAML library."""
    out = []
    for line in Path(path).read_text().splitlines():
        m = re.match(r"\s*- \{name: (\S+), layout: (.*), dtype: (\w+), shape: \[([^\]]*)\], offset: (\d+), bytes: (\d+)\}$",
                     line)
        if m:
            name, layout, dtype, shape, offset, nbytes = m.groups()
            out.append((name, layout.strip().strip("'\""), dtype, [int(s) for s in shape.split(",") if s.strip()],
                        int(offset), int(nbytes)))
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model, art = Path(sys.argv[1]), Path(sys.argv[2])
    _, w = hfgpt2.load(model)
    entries = manifest_weights(art / "manifest.yaml")
    if not entries:
        sys.exit(f"error: {art}/manifest.yaml lists no weights")
    total = max(o + b for _, _, _, _, o, b in entries)
    out = np.zeros(total, dtype=np.uint8)
    for name, layout, dtype, shape, offset, nbytes in entries:
        if name.startswith("zero_bias."):
            data = np.zeros(nbytes // 4, dtype="<f4").view(np.uint8)
        else:
            if name not in w:
                sys.exit(f"error: {model} has no tensor {name}")
            a = np.asarray(w[name], dtype=np.float32)
            rows = re.search(r"rows\[(\d+):(\d+)\]", layout)
            if rows:
                a = a[int(rows.group(1)):int(rows.group(2))]
            fmt = re.match(r"rowmajor(?:-(f16|bf16)-words)?", layout)
            if not fmt:
                sys.exit(f"error: {name}: layout '{layout}' is not repacked here (compile integer formats on the device)")
            if fmt.group(1) is None:
                data = a.astype("<f4").view(np.uint8).ravel()
            else:
                if a.ndim != 2:
                    sys.exit(f"error: {name}: a 16-bit layout of a {a.ndim}-D tensor")
                if a.shape[1] % 2:  # rows padded to whole words
                    a = np.concatenate([a, np.zeros((a.shape[0], 1), np.float32)], axis=1)
                if fmt.group(1) == "f16":
                    bits = a.astype("<f2").view("<u2")  # round to nearest even, as Kiln's floatToHalf
                else:
                    u = a.view("<u4").astype(np.uint64)
                    bits = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")  # bf16, round to nearest even
                data = np.ascontiguousarray(bits).view(np.uint8).ravel()
        if data.size != nbytes:
            sys.exit(f"error: {name} ({layout}): {data.size} bytes, the manifest says {nbytes}")
        out[offset:offset + nbytes] = data
    out.tofile(art / "weights.bin")
    print(f"wrote {art / 'weights.bin'}: {total} bytes, {len(entries)} buffers")


if __name__ == "__main__":
    main()
