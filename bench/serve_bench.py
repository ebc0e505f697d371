#!/usr/bin/env python3
"""Serving benchmark for kiln serve, modelled on vLLM's `bench serve` (random dataset, fixed lengths).

An SSE client that sends fixed-length random prompts (token ids) at each concurrency level and
reports, per level: TTFT (time to first token), TPOT (time per output token after the first),
ITL (inter-token latency between streamed chunks), end-to-end latency (mean, median, p99), request
and output-token throughput, and failures. Beside each level it prints the in-process number for
the same work (`kiln bench ARTIFACT --batch C`: C sequences decoding together, no HTTP), so the
HTTP and scheduling overhead is visible.

  bench/serve_bench.py --kiln build/bin/kiln ARTIFACT [--concurrency 1,2,4,8] [--requests 16]
                       [--input-len 64] [--output-len 64] [--threads 2] [--url http://127.0.0.1:PORT]
                       [--json FILE]

Without --url it starts `kiln serve ARTIFACT --port 0 --parallel MAX(C) --threads T` on loopback
and stops it after. The client only waits on sockets (its CPU seconds are reported): on a 2-core
machine it still competes with the server a little.
"""
import argparse
import http.client
import json
import random
import re
import signal
import statistics
import subprocess
import threading
import time
import urllib.parse


def pct(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def summary(values):
    return {"mean": statistics.fmean(values) if values else float("nan"),
            "median": statistics.median(values) if values else float("nan"), "p99": pct(values, 99)}


def one_request(host, port, prompt, output_len):
    """Streams one completion; returns its timings (seconds) or raises."""
    body = json.dumps({"prompt": prompt, "max_tokens": output_len, "temperature": 0, "ignore_eos": True,
                       "stream": True, "stream_options": {"include_usage": True}})
    conn = http.client.HTTPConnection(host, port, timeout=300)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:200]!r}")
    arrivals, tokens, buf = [], None, b""
    while True:
        chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if not event.startswith(b"data: "):
                continue
            data = event[6:]
            if data == b"[DONE]":
                continue
            j = json.loads(data)
            if j.get("usage"):
                tokens = j["usage"]["completion_tokens"]
            elif j["choices"] and j["choices"][0]["text"]:
                arrivals.append(time.perf_counter())
    end = time.perf_counter()
    conn.close()
    if not arrivals or tokens is None:
        raise RuntimeError("no tokens streamed")
    return {"ttft": arrivals[0] - t0, "e2e": end - t0, "tokens": tokens,
            "tpot": (arrivals[-1] - arrivals[0]) / (tokens - 1) if tokens > 1 else 0.0,
            "itl": [b - a for a, b in zip(arrivals, arrivals[1:])]}


def run_level(host, port, concurrency, prompts, output_len):
    results, failures, lock = [], [], threading.Lock()
    todo = list(enumerate(prompts))

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                _, prompt = todo.pop()
            try:
                r = one_request(host, port, prompt, output_len)
                with lock:
                    results.append(r)
            except Exception as e:  # counted, never fatal
                with lock:
                    failures.append(str(e))

    cpu0, t0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    out_tokens = sum(r["tokens"] for r in results)
    return {"concurrency": concurrency, "requests": len(prompts), "completed": len(results),
            "failed": len(failures), "failures": failures[:3], "wall_s": wall,
            "request_throughput": len(results) / wall, "output_tokens_per_s": out_tokens / wall,
            "ttft_ms": {k: 1000 * v for k, v in summary([r["ttft"] for r in results]).items()},
            "tpot_ms": {k: 1000 * v for k, v in summary([r["tpot"] for r in results]).items()},
            "itl_ms": {k: 1000 * v for k, v in summary([x for r in results for x in r["itl"]]).items()},
            "e2e_ms": {k: 1000 * v for k, v in summary([r["e2e"] for r in results]).items()},
            "client_cpu_s": time.process_time() - cpu0}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("artifact")
    p.add_argument("--kiln", default="build/bin/kiln")
    p.add_argument("--url")
    p.add_argument("--concurrency", default="1,2,4,8")
    p.add_argument("--requests", type=int, default=16)
    p.add_argument("--input-len", type=int, default=64)
    p.add_argument("--output-len", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    if any(c < 1 for c in levels) or a.requests < 1 or a.input_len < 1 or a.output_len < 2:
        p.error("--concurrency values and --requests must be >= 1, --input-len >= 1, --output-len >= 2")
    rng = random.Random(a.seed)
    server = None
    if a.url:
        u = urllib.parse.urlparse(a.url)
        host, port = u.hostname, u.port or 80
    else:
        server = subprocess.Popen([a.kiln, "serve", a.artifact, "--port", "0", "--parallel", str(max(levels)),
                                   "--threads", str(a.threads), "--max-queue", str(a.requests)],
                                  stdout=subprocess.PIPE, text=True)
        m = re.search(r"http://([\d.]+):(\d+)", server.stdout.readline())
        if not m:
            raise SystemExit("kiln serve did not print its address")
        host, port = m.group(1), int(m.group(2))
        deadline = time.monotonic() + 120
        while True:
            try:
                c = http.client.HTTPConnection(host, port, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("kiln serve never became healthy")
            time.sleep(0.1)
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", "/v1/models")
    meta = json.loads(c.getresponse().read())["data"][0]
    vocab = meta.get("meta", {}).get("n_vocab", 50257)
    rows = []
    try:
        one_request(host, port, [rng.randrange(min(vocab, 50000)) for _ in range(a.input_len)], 4)  # warm-up
        for level in levels:
            prompts = [[rng.randrange(min(vocab, 50000)) for _ in range(a.input_len)] for _ in range(a.requests)]
            r = run_level(host, port, level, prompts, a.output_len)
            # The same work in one process: `level` sequences decoding together, no HTTP.
            ip = subprocess.run([a.kiln, "bench", a.artifact, "--batch", str(level), "--prompt-len",
                                 str(a.input_len), "-n", str(a.output_len), "--threads", str(a.threads),
                                 "--repeats", "3", "--json"], capture_output=True, text=True)
            if ip.returncode == 0:
                j = json.loads(ip.stdout.strip().splitlines()[-1])
                r["in_process_decode_tokens_per_s"] = j["decode_tokens_per_s"]
                r["in_process_ms_per_step"] = j["decode_ms_per_step"]
            rows.append(r)
    finally:
        if server:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    print(f"kiln serve {meta['id']} ({a.input_len}-token random prompts, {a.output_len} tokens each, "
          f"{a.requests} requests per level, streaming, loopback)")
    print(f"{'conc':>4} {'ok':>4} {'fail':>4} {'req/s':>7} {'out tok/s':>10} {'in-proc tok/s':>13} "
          f"{'TTFT ms mean/med/p99':>22} {'TPOT ms mean/med/p99':>22} {'ITL ms med/p99':>15} {'client cpu s':>12}")
    for r in rows:
        t, o, i = r["ttft_ms"], r["tpot_ms"], r["itl_ms"]
        print(f"{r['concurrency']:>4} {r['completed']:>4} {r['failed']:>4} {r['request_throughput']:>7.2f} "
              f"{r['output_tokens_per_s']:>10.1f} {r.get('in_process_decode_tokens_per_s', float('nan')):>13.1f} "
              f"{t['mean']:>7.1f}/{t['median']:>6.1f}/{t['p99']:>7.1f} {o['mean']:>7.2f}/{o['median']:>6.2f}/"
              f"{o['p99']:>7.2f} {i['median']:>6.2f}/{i['p99']:>7.2f} {r['client_cpu_s']:>12.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 1 if any(r["failed"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
