// The official openai npm client (v4) against kiln serve's /v1: a completion without and with
// stream, and the model list. Prints one JSON line: {models, text, streamed, finish, usage}.
//   NODE_PATH=build/ort/node_modules node serve_openai.js http://127.0.0.1:PORT/v1 PROMPT MAX_TOKENS
const { OpenAI } = require('openai');

async function main() {
  const [baseURL, prompt, maxTokens] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  const models = await client.models.list();
  const model = models.data[0].id;
  const request = { model, prompt, max_tokens: Number(maxTokens), temperature: 0, ignore_eos: true };
  const done = await client.completions.create(request);
  let streamed = '';
  let finish = null;
  const stream = await client.completions.create({ ...request, stream: true });
  for await (const chunk of stream) {
    streamed += chunk.choices[0].text;
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  let refused = null;
  try {
    await client.completions.create({ model, prompt, max_tokens: -3 });
  } catch (e) {
    refused = { status: e.status, type: e.error && e.error.type };
  }
  console.log(JSON.stringify({ models: models.data.map((m) => m.id), text: done.choices[0].text,
                               finish_nonstream: done.choices[0].finish_reason, usage: done.usage, streamed, finish,
                               refused }));
}
main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
