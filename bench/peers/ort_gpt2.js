#!/usr/bin/env node
// Benchmarks ONNX Runtime (onnxruntime-node, CPU EP) on the GPT-2 graph written by ort_gpt2.py.
//   NODE_PATH=CACHE/ort/node_modules node ort_gpt2.js MODEL.onnx [--threads 2] [--prompt 128] [--gen 128]
//       [--reps 5] [--warmup 1] [--seed 1] [--prompt-ids 818,262,3726 --print-ids] [--opt all|extended|basic|disabled]
// Per run: prefill of the prompt (random ids as llama-bench uses; the same ids as torch_gpt2.py;
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

// n pseudo-random token ids: the same 64-bit LCG as hfgpt2.prompt_ids (torch_gpt2.py uses the same prompt)
function promptIds(n, vocab, seed) {
  const M = (1n << 64n) - 1n;
  let state = BigInt(seed) & M;
  const out = [];
  for (let i = 0; i < n; i++) {
    state = (state * 6364136223846793005n + 1442695040888963407n) & M;
    out.push(Number((state >> 33n) % BigInt(vocab)));
  }
  return out;
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
  // head count / head dim from the past_key_0 input shape [n_head, "P", head_dim]; vocab from logits [1, vocab]
  const shapeOf = (list, name) => ((Array.isArray(list) ? list : []).find((m) => m.name === name) || {}).shape || [];
  const [H, , D] = shapeOf(sess.inputMetadata, 'past_key_0');
  if (!(Number.isInteger(H) && Number.isInteger(D))) throw new Error('cannot read the head shape of past_key_0');
  const vocab = shapeOf(sess.outputMetadata, 'logits')[1];
  if (!Number.isInteger(vocab)) throw new Error('cannot read the vocab size from logits');

  const prompt = a.promptIds || promptIds(a.prompt, vocab, a.seed);
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
