#!/usr/bin/env python3
"""PyTorch eager (Hugging Face transformers) GPT-2 on the GPU, the peer of bench/gpu/check.py.

    torch_eager.py HF_DIR [--prompt-ids 818,262,3726 ...] [-n 16]

Prints one JSON line: per dtype (f32, f16), decode tokens/s (128 greedy tokens after a 128-token
prompt, KV cache, batch 1, the median of 3 runs), the time of a 1024-token prefill (median of 5),
and the greedy ids of each --prompt-ids list (f32), for the HF == Kiln check."""
import argparse
import json
import statistics
import time

import torch
from transformers import GPT2LMHeadModel


def greedy(model, ids, n):
    out = []
    with torch.inference_mode():
        r = model(torch.tensor([ids], device="cuda"), use_cache=True)
        past, nxt = r.past_key_values, int(r.logits[0, -1].argmax())
        for i in range(n):
            out.append(nxt)
            if i + 1 == n:
                break
            r = model(torch.tensor([[nxt]], device="cuda"), past_key_values=past, use_cache=True)
            past, nxt = r.past_key_values, int(r.logits[0, -1].argmax())
    return out


def timed(fn, reps):
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("hf")
    p.add_argument("--prompt-ids", nargs="*", default=[])
    p.add_argument("-n", type=int, default=16)
    a = p.parse_args()
    result = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, 50000, (128,), generator=g).tolist()
    long_prompt = torch.randint(0, 50000, (1, 1024), generator=g).cuda()
    for name, dtype in (("f32", torch.float32), ("f16", torch.float16)):
        model = GPT2LMHeadModel.from_pretrained(a.hf, torch_dtype=dtype).cuda().eval()
        greedy(model, prompt, 8)  # warm-up
        decode = timed(lambda: greedy(model, prompt, 129), 3) - timed(lambda: greedy(model, prompt, 1), 3)
        with torch.inference_mode():
            prefill = timed(lambda: model(long_prompt, use_cache=False), 5)
        result[name] = {"decode_tok_s": 128 / decode, "prefill_1024_ms": prefill * 1000}
        if name == "f32":
            result["greedy"] = [greedy(model, list(map(int, ids.split(","))), a.n) for ids in a.prompt_ids]
        del model
        torch.cuda.empty_cache()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
