#!/usr/bin/env node
// Runs an onnx artifact in ONNX Runtime the way QEfficient's ApiRunner does: the prompt right-padded
// to the Prefill specialization's seq_len with position id -1 (longer prompts in chunks of it), every
// *_RetainedState output fed back as the next step's past_* input, greedy argmax, one token per
// Decode step.
//
//   node kiln-ort.js ARTIFACT --prompt-ids 818,262,3726 [-n 32] [--top-logits K] [--threads N]
//   node kiln-ort.js ARTIFACT --prompt-ids "1,2,3;4,5" ...     (a batch: one session, batch_size 2)
//   node kiln-ort.js ARTIFACT --serve    (for `kiln run` / `kiln eval`: one sequence, commands on stdin)
//   --optimization disabled|basic|extended|all: ORT's graphOptimizationLevel (default all, as
//   QEfficient's runner); --qdq-accuracy-level N: the accuracy level of ORT's DQ -> MatMulNBits
//   fusion (default 0: f32, the graph's arithmetic; ORT's own default is 4: int8 activations)
//
// Prints one JSON line: {"prompt_ids", "ids", "top_logits" ([[id, logit], ...] per generated token, as
// `kiln run --json --top-logits K` prints), "timings"}; for a batch, {"batch": [one object per prompt]}.
// onnxruntime-node is looked up on NODE_PATH, in $KILN_ORT_DIR/node_modules, and in the build tree's
// ort/ (what scripts/setup.sh installs).
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg) {
  process.stderr.write(`error: ${msg}\n`);
  process.exit(1);
}

function loadOrt() {
  const candidates = ['onnxruntime-node'];
  if (process.env.KILN_ORT_DIR) candidates.push(path.resolve(process.env.KILN_ORT_DIR, 'node_modules', 'onnxruntime-node'));
  // build/lib/kiln/onnx/kiln-ort.js -> build/ort; backends/onnx/runner/kiln-ort.js -> build/ort
  candidates.push(path.join(__dirname, '..', '..', '..', 'ort', 'node_modules', 'onnxruntime-node'));
  candidates.push(path.join(__dirname, '..', '..', '..', 'build', 'ort', 'node_modules', 'onnxruntime-node'));
  for (const c of candidates) {
    try {
      return require(c);
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  fail('onnxruntime-node is not installed (scripts/setup.sh installs it into build/ort; or set KILN_ORT_DIR)');
}

function parseArgs(argv) {
  const a = { adapter: 'none', n: 16, topLogits: 0, threads: 0, prompts: null, artifact: null, optimization: 'all', serve: false, qdqAccuracy: 0 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${k} needs a value`);
      return argv[++i];
    };
    const int = () => {
      const v = value();
      if (!/^\d+$/.test(v)) fail(`${k} must be a non-negative integer, got '${v}'`);
      return Number(v);
    };
    if (k === '--prompt-ids') {
      a.prompts = value().split(';').map((p) => p.split(',').map((s) => {
        if (!/^\d+$/.test(s.trim())) fail(`--prompt-ids: '${s}' is not a token id`);
        return Number(s);
      }));
    } else if (k === '--serve') a.serve = true;
    else if (k === '--adapter') a.adapter = value();
    else if (k === '-n') a.n = int();
    else if (k === '--top-logits') a.topLogits = int();
    else if (k === '--threads') a.threads = int();
    else if (k === '--qdq-accuracy-level') {
      a.qdqAccuracy = int();
      if (a.qdqAccuracy > 4) fail('--qdq-accuracy-level must be 0 to 4');
    } else if (k === '--optimization') {
      a.optimization = value();
      if (!['disabled', 'basic', 'extended', 'all'].includes(a.optimization))
        fail(`--optimization must be disabled, basic, extended or all, got '${a.optimization}'`);
    }
    else if (k === '--help' || k === '-h') {
      process.stdout.write('usage: kiln-ort.js ARTIFACT --prompt-ids 1,2,3[;4,5,...] [-n N] [--top-logits K] [--threads N] [--optimization LEVEL] [--qdq-accuracy-level N] [--adapter NAME]\n');
      process.exit(0);
    } else if (k.startsWith('-')) fail(`unknown option '${k}'`);
    else if (a.artifact) fail(`unexpected argument '${k}'`);
    else a.artifact = k;
  }
  if (!a.artifact) fail('missing ARTIFACT (an onnx artifact directory)');
  if (!a.serve && (!a.prompts || a.prompts.some((p) => p.length === 0))) fail('missing or empty --prompt-ids');
  return a;
}

function readSpecializations(dir) {
  const file = path.join(dir, 'specializations.json');
  let json;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${file}: ${e.code === 'ENOENT' ? 'not found (is this an onnx artifact?)' : e.message}`);
  }
  const specs = (json.specializations || []).map((s) => s.symbols || s);
  if (!specs.length) fail(`${file}: no specializations`);
  const seq = specs.map((s) => Number(s.seq_len));
  return { promptLen: Math.max(...seq), ctxLen: Number(specs[0].ctx_len) };
}

function topK(logits, offset, vocab, k) {
  const best = [];
  for (let v = 0; v < vocab; v++) {
    const x = logits[offset + v];
    if (best.length < k || x > best[best.length - 1][1]) {
      let j = best.length < k ? best.length : k - 1;
      if (best.length < k) best.push(null);
      while (j > 0 && best[j - 1][1] < x) {
        best[j] = best[j - 1];
        j--;
      }
      best[j] = [v, x];
    }
  }
  return best;
}

function argmax(logits, offset, vocab) {
  let b = 0;
  for (let v = 1; v < vocab; v++) if (logits[offset + v] > logits[offset + b]) b = v;
  return b;
}

// The retained state of a batch of B sequences (zeros after reset) and one model step over it:
// each *_RetainedState output becomes the next step's past_* input.
// adapters.safetensors of an artifact compiled with --adapters: adapter -> input -> values.
function readAdapters(dir) {
  const file = path.join(dir, 'adapters.safetensors');
  if (!fs.existsSync(file)) return {};
  const blob = fs.readFileSync(file);
  const n = Number(blob.readBigUInt64LE(0));
  const header = JSON.parse(blob.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [key, e] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const slash = key.indexOf('/');
    if (e.dtype !== 'F32' || slash < 1) fail(`${file}: tensor '${key}' is not an F32 adapter factor`);
    const [b, end] = e.data_offsets;
    const bytes = blob.subarray(8 + n + b, 8 + n + end);
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    (out[key.slice(0, slash)] ||= {})[key.slice(slash + 1)] = values;
  }
  return out;
}

function makeStepper(ort, session, meta, pastNames, ctxLen, B, adapters = {}) {
  let past;
  // Switchable adapter inputs: the selected adapter's factors, zeros for none.
  const adapterNames = session.inputNames.filter((n) => n !== 'input_ids' && n !== 'position_ids' && !n.startsWith('past_'));
  let adapterFeeds;
  const setAdapter = (name) => {
    if (name !== 'none' && !adapters[name])
      throw new Error(`no adapter named '${name}' (it has: ${['none', ...Object.keys(adapters)].join(', ')})`);
    const feeds = {};
    for (const n of adapterNames) {
      const shape = meta[n].shape;
      const size = shape.reduce((x, y) => x * y, 1);
      const values = name === 'none' ? new Float32Array(size) : adapters[name][n];
      if (!values || values.length !== size) throw new Error(`adapter '${name}' has no values for input ${n}`);
      feeds[n] = new ort.Tensor('float32', values, shape);
    }
    adapterFeeds = feeds;
  };
  setAdapter('none');
  const reset = () => {
    past = {};
    for (const n of pastNames) {
      const shape = meta[n].shape.map((d) => (d === 'batch_size' ? B : d === 'ctx_len' ? ctxLen : d));
      if (!shape.every(Number.isInteger)) fail(`input ${n} has a shape this runner does not know: ${JSON.stringify(meta[n].shape)}`);
      past[n] = new ort.Tensor('float32', new Float32Array(shape.reduce((x, y) => x * y, 1)), shape);
    }
  };
  async function step(ids, positions, seq) {
    const feeds = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [B, seq]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(positions.map(BigInt)), [B, seq]),
      ...past,
      ...adapterFeeds,
    };
    const out = await session.run(feeds);
    const next = {};
    for (const n of pastNames) next[n] = out[`${n}_RetainedState`];
    past = next;
    return out.logits;
  }
  reset();
  return { reset, step, setAdapter };
}

// Chunk c of a row's tokens, padded to promptLen: any valid id with position -1 (hidden); the row's
// first token sits at position `first`.
function chunkOf(ids, c, promptLen, first) {
  const chunk = [], positions = [];
  for (let s = 0; s < promptLen; s++) {
    const i = c * promptLen + s;
    chunk.push(i < ids.length ? ids[i] : 0);
    positions.push(i < ids.length ? first + i : -1);
  }
  return { chunk, positions };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  const { promptLen, ctxLen } = readSpecializations(a.artifact);
  const modelPath = path.join(a.artifact, 'model.onnx');
  // ORT fuses DequantizeLinear(int8 weight) -> MatMul into MatMulNBits with this accuracy level;
  // its default, 4, requantizes the activations in its own int8 blocks (a W8A8 graph's products
  // then round differently). 0 keeps the graph's f32 arithmetic.
  const options = {
    executionProviders: ['cpu'], graphOptimizationLevel: a.optimization,
    // disable_quant_qdq: ORT's QDQ fusions into its int8 kernels (QLinearMatMul, MatMulIntegerToFloat) use
    // saturating u8s8 pair sums on CPUs without VNNI, which moved W8A8-static logits by up to 0.25 there;
    // without them ORT computes the graph's Quantize/Dequantize math as written, on every CPU. A nonzero
    // --qdq-accuracy-level asks for ORT's stock QDQ fusions at that level instead.
    extra: { session: { qdq_matmulnbits_accuracy_level: String(a.qdqAccuracy),
                        disable_quant_qdq: a.qdqAccuracy > 0 ? '0' : '1' } },
  };
  if (a.threads) options.intraOpNumThreads = a.threads;
  let session;
  try {
    session = await ort.InferenceSession.create(modelPath, options);
  } catch (e) {
    fail(`${modelPath}: ONNX Runtime cannot load it: ${String(e.message || e).split('\n')[0]}`);
  }
  const meta = {};
  for (const m of session.inputMetadata) meta[m.name] = m;
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_'));
  const adapters = readAdapters(a.artifact);
  if (a.serve) return serve(ort, session, meta, pastNames, promptLen, ctxLen, adapters);
  const B = a.prompts.length;
  const chunks = Math.max(...a.prompts.map((p) => Math.ceil(p.length / promptLen)));
  for (const p of a.prompts)
    if (p.length + Math.max(a.n - 1, 0) > ctxLen)
      fail(`a prompt of ${p.length} tokens and ${a.n} new ones do not fit the context of ${ctxLen}`);

  const { step, setAdapter } = makeStepper(ort, session, meta, pastNames, ctxLen, B, adapters);
  try {
    setAdapter(a.adapter);
  } catch (e) {
    fail(`${a.artifact}: ${e.message}`);
  }

  const t0 = process.hrtime.bigint();
  // A row whose prompt ended in an earlier chunk pads a whole chunk: its logits are those of the
  // chunk holding its last token.
  let vocab = 0;
  const rowLogits = [];
  for (let c = 0; c < chunks; c++) {
    const ids = [], positions = [];
    for (const p of a.prompts) {
      const row = chunkOf(p, c, promptLen, 0);
      ids.push(...row.chunk);
      positions.push(...row.positions);
    }
    const out = await step(ids, positions, promptLen);
    vocab = out.dims[2];
    a.prompts.forEach((p, b) => {
      if (Math.ceil(p.length / promptLen) === c + 1) rowLogits[b] = out.data.slice(b * vocab, (b + 1) * vocab);
    });
  }
  let logits = { data: new Float32Array(B * vocab) };
  rowLogits.forEach((l, b) => logits.data.set(l, b * vocab));
  const t1 = process.hrtime.bigint();
  const results = a.prompts.map((p) => ({ prompt_ids: p, ids: [], top_logits: [] }));
  for (let t = 0; t < a.n; t++) {
    const ids = [], positions = [];
    results.forEach((r, b) => {
      const next = argmax(logits.data, b * vocab, vocab);
      r.ids.push(next);
      if (a.topLogits) r.top_logits.push(topK(logits.data, b * vocab, vocab, a.topLogits));
      ids.push(next);
      positions.push(r.prompt_ids.length + t);
    });
    if (t + 1 < a.n) logits = await step(ids, positions, 1);
  }
  const t2 = process.hrtime.bigint();
  const timings = {
    prefill_ms: Number(t1 - t0) / 1e6,
    decode_ms_per_token: a.n > 1 ? Number(t2 - t1) / 1e6 / (a.n - 1) : 0,
  };
  for (const r of results) {
    if (!a.topLogits) delete r.top_logits;
    r.timings = timings;
  }
  process.stdout.write(JSON.stringify(B === 1 ? results[0] : { batch: results }) + '\n');
}

// --serve: a line protocol for kiln's driver (tools/kiln/OrtSession.cpp). Prints
// "ready VOCAB CTX_LEN PROMPT_LEN"; then per line "append ID,ID,..." (the tokens go in after those
// already in, prefill chunks or decode steps) answers "logits VOCAB" and the last token's logits as
// VOCAB little-endian float32s; "reset" answers "ok"; "adapter NAME" selects a switchable adapter
// (none: the base model) for the tokens after it and answers "ok"; a bad request answers "error MESSAGE".
async function serve(ort, session, meta, pastNames, promptLen, ctxLen, adapters) {
  const stepper = makeStepper(ort, session, meta, pastNames, ctxLen, 1, adapters);
  let position = 0, vocab = 0;
  const logitsMeta = session.outputMetadata.find((m) => m.name === 'logits');
  vocab = logitsMeta && Number.isInteger(logitsMeta.shape[2]) ? logitsMeta.shape[2] : 0;
  if (!vocab) fail('cannot read the vocabulary size from the logits output');
  const out = process.stdout;
  const send = (line, bytes) => new Promise((resolve) => {
    out.write(line + '\n');
    if (bytes) out.write(bytes, resolve);
    else resolve();
  });
  const run = async (ids, positions, seq) => (await stepper.step(ids, positions, seq)).data;
  async function append(ids) {
    if (position + ids.length > ctxLen) throw new Error(`${position + ids.length} tokens do not fit the context of ${ctxLen}`);
    let logits;
    if (ids.length === 1 && position > 0) {
      logits = await run(ids, [position], 1);
    } else {
      for (let c = 0; c * promptLen < ids.length; c++) {
        const { chunk, positions } = chunkOf(ids, c, promptLen, position);
        logits = await run(chunk, positions, promptLen);
      }
    }
    position += ids.length;
    return logits;
  }
  await send(`ready ${vocab} ${ctxLen} ${promptLen}`);
  const readline = require('readline');
  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    const [cmd, arg] = line.trim().split(/\s+/, 2);
    try {
      if (cmd === 'reset') {
        stepper.reset();
        position = 0;
        await send('ok');
      } else if (cmd === 'adapter' && arg) {
        stepper.setAdapter(arg);
        await send('ok');
      } else if (cmd === 'append' && arg && /^\d+(,\d+)*$/.test(arg)) {
        const logits = await append(arg.split(',').map(Number));
        await send(`logits ${vocab}`, Buffer.from(logits.buffer, logits.byteOffset, vocab * 4));
      } else {
        await send(`error bad request '${line.slice(0, 40)}'`);
      }
    } catch (e) {
      await send(`error ${String(e.message || e).split('\n')[0]}`);
    }
  }
}

main().catch((e) => fail(String(e.message || e).split('\n')[0]));
