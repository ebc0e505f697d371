#!/usr/bin/env python3
"""kiln serve on loopback, started and stopped here, every client bounded in count and time:
greedy completions byte-identical to `kiln run`; the concatenated stream equal to the
non-streamed text (with and without a stop string); concurrent greedy and seeded requests each
equal to its sequential result; a client that disconnects mid-stream frees its slot and stops its
generation; the bad-request table (each the right status and error shape, the server alive after);
a full queue answered 503; the official openai npm client with and without stream; /metrics,
/tokenize, /detokenize, the V2 routes; a clean exit on SIGTERM; a bad artifact refused in one line."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

from common import MODEL, Checks, kiln, kiln_run, parse_args

args = parse_args()
c = Checks()
art = os.path.join(args.work, "serve-tiny")
kiln(args, "compile", MODEL, "--prompt-len", 16, "--ctx-len", 128, "--decode-batch", "1,2,4", "-o", art)


class Server:
    def __init__(self, *flags):
        self.proc = subprocess.Popen([args.kiln, "serve", art, "--port", "0", *map(str, flags)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            raise SystemExit(f"kiln serve printed no address: {line!r} {self.proc.stderr.read()}")
        self.port = int(m.group(1))
        deadline = time.monotonic() + 60
        while self.get("/health")[0] != 200:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("kiln serve never became healthy")
            time.sleep(0.05)

    def request(self, method, path, body=None, raw=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        conn.request(method, path, body=data, headers=headers or {"Content-Type": "application/json"})
        r = conn.getresponse()
        text = r.read().decode("utf-8")
        conn.close()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text

    def get(self, path):
        try:
            return self.request("GET", path)
        except OSError:
            return 0, None

    def post(self, path, body=None, raw=None):
        return self.request("POST", path, body, raw)

    def stream(self, body):
        """The pieces of an SSE completion, the final chunk, and whether [DONE] came last."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("POST", "/v1/completions", json.dumps({**body, "stream": True}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        pieces, events = [], []
        for line in r.read().decode("utf-8").split("\n"):
            if line.startswith("data: "):
                events.append(line[6:])
        conn.close()
        done = events and events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events if e != "[DONE]"]
        for ch in chunks:
            if ch.get("choices"):
                pieces.append(ch["choices"][0]["text"])
        return r.status, pieces, chunks, done

    def metrics(self):
        status, text = self.get("/metrics")
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(kiln_\w+) ([0-9.e+-]+)$", text, re.M)}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9, ""
        return self.proc.returncode, out


def completion(s, prompt, **kw):
    status, body = s.post("/v1/completions", {"prompt": prompt, **kw})
    return status, body


prompts = ["In the beginning", "And God said", "The LORD is my shepherd", "Jesus wept.", "Blessed are the meek"]
s = Server("--parallel", 3, "--max-queue", 8, "--threads", 2)
c.check(s.get("/health") == (200, {"status": "ok"}), "GET /health is 200 {status: ok} once loaded")

# Greedy == kiln run (which prints the prompt, then the completion, then a newline).
for p in prompts[:3]:
    want = kiln(args, "run", art, "--prompt", p, "-n", 24)
    status, body = completion(s, p, max_tokens=24, temperature=0, ignore_eos=True, echo=True)
    c.check(status == 200 and body["choices"][0]["text"] + "\n" == want,
            f"{p!r}: greedy echo text byte-identical to kiln run")
    c.check(body["choices"][0]["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 24 and
            body["usage"]["prompt_tokens"] + 24 == body["usage"]["total_tokens"], f"{p!r}: usage and finish_reason")
    c.check(body["timings"]["predicted_n"] == 24 and body["timings"]["prompt_ms"] > 0, f"{p!r}: timings")

# Token ids as the prompt give the same text.
_, ids = s.post("/tokenize", {"content": prompts[0]})
status, by_ids = completion(s, ids["tokens"], max_tokens=12, temperature=0, ignore_eos=True)
status2, by_text = completion(s, prompts[0], max_tokens=12, temperature=0, ignore_eos=True)
c.check(status == status2 == 200 and by_ids["choices"][0]["text"] == by_text["choices"][0]["text"],
        "a prompt of token ids completes as its text does")

# Streaming: the pieces concatenate to the non-streamed text, with and without stop strings.
for kw in ({"max_tokens": 40}, {"max_tokens": 60, "stop": [" will", "\n"]}, {"max_tokens": 30, "echo": True},
           {"max_tokens": 30, "temperature": 0.9, "top_k": 40, "top_p": 0.95, "seed": 11}):
    kw = {"temperature": 0, "ignore_eos": True, **kw}
    status, whole = completion(s, prompts[1], **kw)
    sstatus, pieces, chunks, done = s.stream({"prompt": prompts[1], **kw})
    c.check(status == sstatus == 200 and "".join(pieces) == whole["choices"][0]["text"] and done,
            f"stream {kw}: pieces concatenate to the non-streamed text, then [DONE]")
    c.check(chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"],
            f"stream {kw}: the same finish_reason ({whole['choices'][0]['finish_reason']})")
    if "stop" in kw:
        text = whole["choices"][0]["text"]
        c.check(whole["choices"][0]["finish_reason"] == "stop" and not any(x in text for x in kw["stop"]),
                f"stop strings end the text before them ({text!r})")
status, pieces, chunks, _ = s.stream({"prompt": prompts[0], "max_tokens": 5, "temperature": 0,
                                      "stream_options": {"include_usage": True}})
c.check(chunks[-1].get("usage", {}).get("completion_tokens") == 5, "stream_options.include_usage adds usage last")
# Multi-byte text: a stream never splits a UTF-8 character (each piece decodes on its own).
status, pieces, _, _ = s.stream({"prompt": "é" * 5 + " ü", "max_tokens": 20, "temperature": 1.5, "seed": 3})
c.check(status == 200 and all(isinstance(p, str) and "\ufffd" not in p for p in pieces),
        "streamed pieces are whole UTF-8 characters")

# Concurrency: each of N concurrent requests equals its sequential result (greedy, and seeded).
jobs = [dict(prompt=p, max_tokens=30, temperature=0, ignore_eos=True) for p in prompts] + \
       [dict(prompt=p, max_tokens=30, temperature=0.8, seed=100 + i, ignore_eos=True) for i, p in enumerate(prompts)]
sequential = [completion(s, **j)[1]["choices"][0]["text"] for j in jobs]
results = [None] * len(jobs)


def run(i):
    results[i] = completion(s, **jobs[i])


before = s.metrics()
threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
c.check(all(r and r[0] == 200 for r in results),
        f"{len(jobs)} concurrent requests all answered 200 {[r and r[0] for r in results]} "
        f"{[r[1] for r in results if r and r[0] != 200][:1]}")
c.check([r[1]["choices"][0]["text"] for r in results] == sequential,
        f"{len(jobs)} concurrent requests (greedy and seeded) each equal to its sequential result")
after = s.metrics()
steps = after["kiln_decode_steps_total"] - before["kiln_decode_steps_total"]
rows = after["kiln_decode_rows_total"] - before["kiln_decode_rows_total"]
c.check(steps > 0 and rows / steps > 1.3, f"continuous batching: {rows / max(steps, 1):.2f} sequences per decode step")
again = [completion(s, **j)[1]["choices"][0]["text"] for j in jobs[5:]]
c.check(again == sequential[5:], "the same seed gives the same text again")

# A client that disconnects mid-stream frees its slot and stops its generation.
before = s.metrics()
sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
body = json.dumps({"prompt": prompts[2], "max_tokens": 110, "temperature": 0, "ignore_eos": True, "stream": True})
sock.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
first = sock.recv(256)
sock.close()
# Until the engine has ended that request (it may still be queued when the client leaves).
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    after = s.metrics()
    if (after["kiln_requests_total"] > before["kiln_requests_total"] and after["kiln_requests_processing"] == 0 and
            after["kiln_requests_deferred"] == 0):
        break
    time.sleep(0.02)
generated = after["kiln_tokens_predicted_total"] - before["kiln_tokens_predicted_total"]
c.check(b"200 OK" in first and after["kiln_requests_processing"] == 0,
        f"a client gone mid-stream: requests_processing back to 0 ({first[:40]!r}, "
        f"{after['kiln_requests_processing']:.0f} processing)")
c.check(generated < 110, f"... and its generation stopped early ({generated:.0f} of 110 tokens)")

# The bad-request table: status, error shape, and the server alive after each.
table = [
    ("POST", "/v1/completions", "{not json", 400, "invalid_request_error"),
    ("POST", "/v1/completions", "[1, 2]", 400, "invalid_request_error"),
    ("POST", "/v1/completions", '{"prompt": "x", "max_tokens": 1e3081}', 400, "invalid_request_error"),  # fuzz
    ("POST", "/v1/completions", "", 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"max_tokens": 4}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": 5}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": ""}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": ["a", "b"]}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": [1, 99999999]}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "max_tokens": "ten"}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "max_tokens": -1}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "max_tokens": 10 ** 12}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "max_tokens": 1e300}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "temperature": -0.5}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "top_p": 0}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "top_k": -2}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "seed": -1}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "stop": [1]}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "stream": "yes"}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "n": 2}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "x", "logprobs": 5}, 400, "invalid_request_error"),
    ("POST", "/v1/completions", {"prompt": "word " * 200}, 400, "exceed_context_size_error"),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, 501, "not_supported_error"),
    ("POST", "/tokenize", {"content": 3}, 400, "invalid_request_error"),
    ("POST", "/detokenize", {"tokens": [-1]}, 400, "invalid_request_error"),
    ("POST", "/detokenize", {"tokens": "abc"}, 400, "invalid_request_error"),
    ("GET", "/v1/nothing", None, 404, "not_found_error"),
    ("POST", "/health", {}, 405, "invalid_request_error"),
    ("GET", "/v1/completions", None, 405, "invalid_request_error"),
    ("DELETE", "/v1/models", None, 405, "invalid_request_error"),
    ("GET", "/v2/models/other", None, 404, "not_found_error"),
    ("POST", "/v1/completions", "x" * (2 << 20), 413, "invalid_request_error"),
]
for method, path, body, want, kind in table:
    raw = body if isinstance(body, str) else None
    status, got = s.request(method, path, None if raw is not None else body, raw)
    err = got.get("error", {}) if isinstance(got, dict) else {}
    c.check(status == want and err.get("code") == want and err.get("type") == kind and err.get("message"),
            f"{method} {path} {str(body)[:50]!r}: {want} {kind} ({status}: {str(err.get('message'))[:80]})")
status, got = s.post("/v1/completions", {"prompt": "word " * 200})
n_long = len(s.post("/tokenize", {"content": "word " * 200})[1]["tokens"])
c.check(got["error"].get("n_prompt_tokens") == n_long > 128 and got["error"].get("n_ctx") == 128,
        "a prompt past the context names both token counts")
c.check(s.get("/health")[0] == 200 and completion(s, "Amen", max_tokens=3)[0] == 200,
        "the server survives the whole table")

# Routes: models, tokenize/detokenize round trip with multi-byte text, metrics, V2.
status, models = s.get("/v1/models")
c.check(status == 200 and models["data"][0]["id"] == "serve-tiny" and models["data"][0]["meta"]["n_ctx"] == 128,
        "GET /v1/models lists the artifact")
text = "Grüße, 世界! In the beginning"
_, toks = s.post("/tokenize", {"content": text})
_, back = s.post("/detokenize", {"tokens": toks["tokens"]})
c.check(back["content"] == text, "/tokenize then /detokenize round-trips multi-byte text")
_, pieces = s.post("/tokenize", {"content": "世", "with_pieces": True})
c.check(bytes(b for t in pieces["tokens"] for b in t["piece"]).decode() == "世", "with_pieces gives each piece's bytes")
m = s.metrics()
c.check(m["kiln_requests_total"] > 20 and m["kiln_tokens_predicted_total"] > 500 and m["kiln_slots"] == 3,
        "GET /metrics counts requests and tokens (Prometheus text)")
c.check(s.get("/v2/health/ready") == (200, {"ready": True}) and s.get("/v2/models/serve-tiny")[0] == 200 and
        s.get("/v2/models/serve-tiny/ready")[0] == 200, "V2 health and model metadata")

# The official openai npm client.
node_path = os.path.join(os.path.dirname(os.path.abspath(args.kiln)), "..", "ort", "node_modules")
p = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "serve_openai.js"),
                    f"http://127.0.0.1:{s.port}/v1", prompts[0], "20"],
                   capture_output=True, text=True, timeout=120, env={**os.environ, "NODE_PATH": node_path})
if p.returncode != 0:
    c.check(False, f"the openai npm client ran: {p.stderr.strip()[-400:]}")
else:
    o = json.loads(p.stdout.strip().splitlines()[-1])
    want = completion(s, prompts[0], max_tokens=20, temperature=0, ignore_eos=True)[1]["choices"][0]["text"]
    c.check(o["models"] == ["serve-tiny"], "openai client: models.list")
    c.check(o["text"] == want and o["usage"]["completion_tokens"] == 20, "openai client: completions.create")
    c.check(o["streamed"] == want and o["finish"] == "length", "openai client: completions.create with stream")
    c.check(o["refused"] == {"status": 400, "type": "invalid_request_error"}, "openai client: a 400 surfaces as one")

code, out = s.stop()
c.check(code == 0 and "stopped" in out, "SIGTERM: a clean exit")

# Switchable adapters as models: `model` selects one per request; concurrent requests on
# different adapters (grouped per adapter in each batched step) each equal kiln run --adapter.
import peft_numpy  # noqa: E402

lora = {}
for name, seed, std in (("psalms", 1, 0.4), ("proverbs", 2, 0.8)):
    lora[name] = os.path.join(args.work, "serve-lora-" + name)
    peft_numpy.write_adapter(lora[name], MODEL, suffixes=peft_numpy.MODULES, r=4, alpha=8.0, seed=seed, std=std)
art_lora = os.path.join(args.work, "serve-lora")
kiln(args, "compile", MODEL, "--prompt-len", 16, "--ctx-len", 128, "--decode-batch", "1,2,4",
     "--adapters", ",".join(f"{k}={v}" for k, v in lora.items()), "-o", art_lora)
art_plain = art
art = art_lora
s = Server("--parallel", 4, "--threads", 2, "--chat-template", "chatml")
status, models = s.get("/v1/models")
c.check([m["id"] for m in models["data"]] == ["serve-lora", "psalms", "proverbs"],
        "GET /v1/models lists the switchable adapters as models")
want = {}
for model, adapter in (("serve-lora", "none"), ("psalms", "psalms"), ("proverbs", "proverbs")):
    for p in prompts[:2]:
        want[model, p] = kiln(args, "run", art_lora, "--adapter", adapter, "--prompt", p, "-n", 20)
c.check(len({want[m, prompts[0]] for m in ("serve-lora", "psalms", "proverbs")}) == 3,
        "the adapters change the greedy text (a test that can fail)")
jobs = [(m, p) for m in ("serve-lora", "psalms", "proverbs") for p in prompts[:2]] * 2
results = [None] * len(jobs)


def run_adapter(i):
    m, p = jobs[i]
    results[i] = completion(s, p, model=m, max_tokens=20, temperature=0, ignore_eos=True, echo=True)


threads = [threading.Thread(target=run_adapter, args=(i,)) for i in range(len(jobs))]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
c.check(all(r and r[0] == 200 and r[1]["choices"][0]["text"] + "\n" == want[jobs[i]] and r[1]["model"] == jobs[i][0]
            for i, r in enumerate(results)),
        f"{len(jobs)} concurrent requests over 3 adapters each byte-identical to kiln run --adapter")
# A chat template (--chat-template chatml): the messages become a ChatML prompt, the reply ends
# before <|im_end|>; the same text as /v1/completions on that prompt, streamed or not.
msgs = [{"role": "system", "content": "Answer in the words of the book."},
        {"role": "user", "content": "Who made the heaven and the earth?"}]
chatml = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs) + "<|im_start|>assistant\n"
status, chat = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 24, "temperature": 0})
_, plain = completion(s, chatml, max_tokens=24, temperature=0, stop="<|im_end|>")
c.check(status == 200 and chat["object"] == "chat.completion" and
        chat["choices"][0]["message"] == {"role": "assistant", "content": plain["choices"][0]["text"]},
        "chat completion == the completion of its ChatML prompt")
conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
conn.request("POST", "/v1/chat/completions", json.dumps({"messages": msgs, "max_tokens": 24, "temperature": 0,
                                                         "stream": True}), {"Content-Type": "application/json"})
events = [l[6:] for l in conn.getresponse().read().decode().split("\n") if l.startswith("data: ")]
deltas = [json.loads(e)["choices"][0]["delta"] for e in events if e != "[DONE]"]
c.check(deltas[0] == {"role": "assistant"} and "".join(d.get("content", "") for d in deltas) ==
        plain["choices"][0]["text"] and events[-1] == "[DONE]", "a streamed chat: the role, then the content deltas")
for bad in (None, "string", [123], [{}], [{"role": "robot", "content": "hi"}], []):
    status, got = s.post("/v1/chat/completions", {"messages": bad})
    c.check(status == 400 and got["error"]["type"] == "invalid_request_error", f"chat messages {bad!r}: 400")
status, got = completion(s, "x", model="no-such-model")
c.check(status == 404 and "psalms" in got["error"]["message"], "an unknown model is 404 naming the served ones")
code, _ = s.stop()
c.check(code == 0, "SIGTERM: a clean exit")
art = art_plain

# A full queue: one slot, one waiting, the rest refused with 503 at once.
s = Server("--parallel", 1, "--max-queue", 1, "--threads", 1)
replies = [None] * 6


def hold(i):
    replies[i] = completion(s, prompts[i % 5], max_tokens=120, temperature=0, ignore_eos=True)


threads = [threading.Thread(target=hold, args=(i,)) for i in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
statuses = sorted(r[0] for r in replies if r)
busy = [r[1] for r in replies if r and r[0] == 503]
c.check(len(statuses) == 6 and statuses.count(200) >= 2 and statuses.count(503) >= 1 and set(statuses) <= {200, 503},
        f"--parallel 1 --max-queue 1 under 6 at once: 200s and 503s ({statuses})")
c.check(all(b["error"]["type"] == "unavailable_error" for b in busy), "a full queue is an unavailable_error")
c.check(completion(s, "Amen", max_tokens=3)[0] == 200, "... and the server serves again after")
code, _ = s.stop()
c.check(code == 0, "SIGTERM: a clean exit")

# A bad artifact: one line, non-zero.
p = kiln_run(args, "serve", os.path.join(args.work, "no-such-artifact"), "--port", "0")
c.check(p.returncode != 0 and "not an artifact directory" in p.stderr and len(p.stderr.strip().splitlines()) == 1,
        f"kiln serve on a missing artifact: one line, non-zero ({p.stderr.strip()[:100]})")
p = kiln_run(args, "serve", art, "--port", "70000")
c.check(p.returncode != 0 and "--port" in p.stderr, "a bad --port is refused")
c.finish()
