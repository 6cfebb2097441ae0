// openai_client.mjs - drive `frugal serve` with the official `openai` npm package
// (v4) and check what it gets back: shapes, usage counts, streaming, stop strings.
// Usage: node openai_client.mjs BASE_URL NODE_DIR   (NODE_DIR holds node_modules/openai)
// Prints "PASS name" / "FAIL name: why" lines; exits 1 if anything failed.
import { createRequire } from 'node:module';

const [baseURL, nodeDir] = process.argv.slice(2);
const OpenAI = createRequire(nodeDir + '/')('openai');
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });

let failed = 0;
function check(name, cond, why = '') {
  if (cond) console.log(`PASS ${name}`);
  else { failed++; console.log(`FAIL ${name}: ${why}`); }
}
function usageOk(u, maxTokens) {
  return u && Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0 &&
    Number.isInteger(u.completion_tokens) && u.completion_tokens >= 0 &&
    u.completion_tokens <= maxTokens && u.total_tokens === u.prompt_tokens + u.completion_tokens;
}

let firstId = null;
function stream_id(ch) { if (firstId === null) firstId = ch.id; return firstId; }

const messages = [
  { role: 'system', content: 'You are a fortune cookie.' },
  { role: 'user', content: 'Tell me my fortune.' },
];

// chat, non-streaming
const chat = await client.chat.completions.create({ model: 'm', messages, max_tokens: 24, seed: 7 });
check('chat object', chat.object === 'chat.completion' && typeof chat.id === 'string', JSON.stringify(chat));
const c0 = chat.choices[0];
check('chat message', c0.index === 0 && c0.message.role === 'assistant' && typeof c0.message.content === 'string',
  JSON.stringify(c0));
check('chat finish_reason', ['stop', 'length'].includes(c0.finish_reason), c0.finish_reason);
check('chat usage', usageOk(chat.usage, 24), JSON.stringify(chat.usage));
check('chat length means max_tokens', c0.finish_reason !== 'length' || chat.usage.completion_tokens === 24,
  JSON.stringify(chat.usage));

// chat, streaming (with the usage chunk): same seed, same text
const stream = await client.chat.completions.create({
  model: 'm', messages, max_tokens: 24, seed: 7, stream: true, stream_options: { include_usage: true },
});
let text = '', role = null, finish = null, usage = null, chunks = 0, badChunks = 0;
for await (const ch of stream) {
  chunks++;
  if (ch.object !== 'chat.completion.chunk' || ch.id !== stream_id(ch)) badChunks++;
  if (ch.usage) usage = ch.usage;
  for (const ch0 of ch.choices) {
    if (ch0.delta.role) role = ch0.delta.role;
    if (ch0.delta.content) text += ch0.delta.content;
    if (ch0.finish_reason) finish = ch0.finish_reason;
  }
}
check('chat chunk objects', chunks > 2 && badChunks === 0, `${badChunks} of ${chunks}`);
check('chat stream role', role === 'assistant', role);
check('chat stream finish', finish === c0.finish_reason, `${finish} vs ${c0.finish_reason}`);
check('chat stream text = non-stream text (same seed)', text === c0.message.content,
  JSON.stringify([text, c0.message.content]));
check('chat stream usage', usageOk(usage, 24) && usage.completion_tokens === chat.usage.completion_tokens,
  JSON.stringify(usage));

// completions, non-streaming, with logprobs
const prompt = 'A wise man once said';
const comp = await client.completions.create({ model: 'm', prompt, max_tokens: 32, seed: 11, logprobs: 2,
  logit_bias: { 2: -100 } });
const k0 = comp.choices[0];
check('completion object', comp.object === 'text_completion' && typeof k0.text === 'string', JSON.stringify(comp));
check('completion usage', usageOk(comp.usage, 32) && comp.usage.completion_tokens === 32 && k0.finish_reason === 'length',
  JSON.stringify(comp.usage) + k0.finish_reason);
const lp = k0.logprobs;
check('completion logprobs', lp && lp.tokens.length === 32 && lp.token_logprobs.length === 32 &&
  lp.token_logprobs.every((x) => x <= 0) && lp.top_logprobs.every((t) => Object.keys(t).length >= 1) &&
  lp.tokens.join('') === k0.text, JSON.stringify(lp).slice(0, 300));

// completions, streaming: same text chunk by chunk
const cs = await client.completions.create({ model: 'm', prompt, max_tokens: 32, seed: 11, stream: true,
  logit_bias: { 2: -100 } });
let ctext = '', cfinish = null;
for await (const ch of cs) {
  for (const ch0 of ch.choices) { ctext += ch0.text; if (ch0.finish_reason) cfinish = ch0.finish_reason; }
}
check('completion stream text', ctext === k0.text && cfinish === 'length', JSON.stringify([ctext, k0.text]));

// stop strings: cut at the first occurrence, never leaking a partial match into the stream
const mid = Math.floor(k0.text.length / 2);
const stop = k0.text.slice(mid, mid + 3);
const want = k0.text.slice(0, k0.text.indexOf(stop));
const st1 = await client.completions.create({ model: 'm', prompt, max_tokens: 32, seed: 11, stop: [stop],
  logit_bias: { 2: -100 } });
check('stop non-stream', st1.choices[0].text === want && st1.choices[0].finish_reason === 'stop',
  JSON.stringify([st1.choices[0].text, want, stop]));
const st2 = await client.completions.create({ model: 'm', prompt, max_tokens: 32, seed: 11, stop,
  stream: true, logit_bias: { 2: -100 } });
let stext = '';
for await (const ch of st2) for (const ch0 of ch.choices) stext += ch0.text;
check('stop stream', stext === want, JSON.stringify([stext, want, stop]));

// models
const models = await client.models.list();
check('models.list', models.data.length === 1 && typeof models.data[0].id === 'string' &&
  models.data[0].object === 'model', JSON.stringify(models.data));

// an API error surfaces as the SDK's typed error
try {
  await client.chat.completions.create({ model: 'm', messages, n: 2 });
  check('n=2 rejected', false, 'no error');
} catch (e) {
  check('n=2 rejected', e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'n',
    `${e.status} ${e.message}`);
}
console.log(`node: ${failed} failed, ${chunks} chat chunks`);
process.exit(failed ? 1 : 0);
