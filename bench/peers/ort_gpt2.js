#!/usr/bin/env node
// Benchmarks ONNX Runtime (onnxruntime-node, CPU EP) on the GPT-2 graph written by ort_gpt2.py.
//   NODE_PATH=CACHE/ort/node_modules node ort_gpt2.js MODEL.onnx [--threads 2] [--prompt 128] [--gen 128]
//       [--reps 5] [--warmup 1] [--seed 1] [--prompt-ids 818,262,3726 --print-ids] [--opt all|extended|basic|disabled]
// Per run: prefill of the prompt (random ids from a seeded generator, as llama-bench uses random tokens;
// logits of the last position only), then `gen` greedy decode steps feeding the presents back as pasts.
// Prints one JSON line {"peer":"onnxruntime","format":"f32","prefill_tok_s":..,"decode_ms_per_token":..}:
// means over `reps` timed runs of prompt/prefill_seconds and decode_seconds/gen*1000.
'use strict';
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const a = { threads: 2, prompt: 128, gen: 128, reps: 5, warmup: 1, seed: 1, opt: 'all', printIds: false };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const num = (n) => { const v = Number(argv[++i]); if (!Number.isFinite(v)) throw new Error(`bad ${k}`); a[n] = v; };
    if (k === '--threads') num('threads');
    else if (k === '--prompt') num('prompt');
    else if (k === '--gen') num('gen');
    else if (k === '--reps') num('reps');
    else if (k === '--warmup') num('warmup');
    else if (k === '--seed') num('seed');
    else if (k === '--opt') a.opt = argv[++i];
    else if (k === '--prompt-ids') a.promptIds = argv[++i].split(',').map(Number);
    else if (k === '--print-ids') a.printIds = true;
    else if (k.startsWith('--')) throw new Error(`unknown option ${k}`);
    else rest.push(k);
  }
  if (rest.length !== 1) throw new Error('usage: ort_gpt2.js MODEL.onnx [options]');
  a.model = rest[0];
  return a;
}

// mulberry32: small seeded PRNG for the prompt ids
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const now = () => Number(process.hrtime.bigint()) / 1e9;
const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
const std = (xs) => { const m = mean(xs); return Math.sqrt(mean(xs.map((x) => (x - m) ** 2))); };

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const sess = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'], intraOpNumThreads: a.threads, interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: a.opt,
  });
  const pastNames = sess.inputNames.filter((n) => n.startsWith('past_'));
  const meta = sess.inputMetadata ? sess.inputMetadata : null;
  // head count / head dim from the symbolic shapes when exposed, else from a probe run with a 1-token input
  let H, D;
  if (meta && Array.isArray(meta) && meta.length && meta[1].shape) {
    [H, , D] = meta[1].shape;
  }
  if (!(Number.isInteger(H) && Number.isInteger(D))) throw new Error('cannot read head shape from model inputs');
  const vocab = (sess.outputMetadata && sess.outputMetadata[0].shape) ? sess.outputMetadata[0].shape[1] : 50257;

  const r = rng(a.seed);
  const prompt = a.promptIds || Array.from({ length: a.prompt }, () => Math.floor(r() * vocab));
  const empty = new ort.Tensor('float32', new Float32Array(0), [H, 0, D]);
  const argmax = (t) => { const d = t.data; let b = 0; for (let i = 1; i < d.length; i++) if (d[i] > d[b]) b = i; return b; };

  async function step(ids, past) {
    const feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [ids.length]) };
    for (const n of pastNames) feeds[n] = past ? past[n.replace('past_', 'present_')] : empty;
    return sess.run(feeds);
  }
  async function runOnce() {
    const t0 = now();
    let out = await step(prompt, null);
    const t1 = now();
    const ids = [];
    for (let i = 0; i < a.gen; i++) {
      const nxt = argmax(out.logits);
      ids.push(nxt);
      out = await step([nxt], out);
    }
    const t2 = now();
    return { prefill: t1 - t0, decode: t2 - t1, ids };
  }

  if (a.printIds) { console.log((await runOnce()).ids.join(',')); return; }
  for (let i = 0; i < a.warmup; i++) await runOnce();
  const pf = [], dc = [];
  for (let i = 0; i < a.reps; i++) {
    const o = await runOnce();
    pf.push(prompt.length / o.prefill);
    dc.push(o.decode / Math.max(a.gen, 1) * 1000);
  }
  const round = (x, n) => Number(x.toFixed(n));
  console.log(JSON.stringify({
    peer: 'onnxruntime', format: 'f32',
    prefill_tok_s: round(mean(pf), 2), decode_ms_per_token: round(mean(dc), 3),
    prefill_tok_s_std: round(std(pf), 2), decode_ms_per_token_std: round(std(dc), 3),
    n_prompt: prompt.length, n_gen: a.gen, threads: a.threads, reps: a.reps, graph_opt: a.opt,
    version: require('onnxruntime-node/package.json').version,
  }));
}

main().catch((e) => { console.error(`error: ${e.message}`); process.exit(1); });
