// openai_client.mjs: the official `openai` npm package as a real third-party client of an
// OpenAI-compatible endpoint. scripts/setup-openai.sh installs the pinned package and
// prints its folder, which MLO_OPENAI_DIR names.
//
//   node tests/openai_client.mjs BASE_URL MODE MODEL [EXTRA]
//
// BASE_URL ends in /v1. MODE is one of
//   chat        chat.completions.create, one user message "Hello", max_tokens 8
//   stream      the same streamed, max_tokens 16: chunks counted, content joined
//   completion  completions.create, prompt "Hello", max_tokens 8
//   embedding   embeddings.create, input "hello world"
//   models      models.list (MODEL is not used; pass anything)
//   responses   responses.create, input "Hello", max_output_tokens 8
//   responses_stream  the same streamed: the event types in order, the text joined
// EXTRA, optional, is a JSON object merged over the request's parameters
// ('{"max_tokens":4}', '{"messages":[...]}', '{"input":["a","b"]}').
//
// Prints one JSON line on stdout, what a test checks:
//   {"ok":true,"mode":"chat","model":...,"text":...,"finish_reason":...,"usage":{...}}
//   {"ok":true,"mode":"stream","chunks":N,"content_chunks":N,"text":...,"finish_reason":...,"model":...}
//   {"ok":true,"mode":"completion","model":...,"text":...,"finish_reason":...,"usage":{...}}
//   {"ok":true,"mode":"embedding","model":...,"count":N,"dims":N}
//   {"ok":true,"mode":"models","ids":[...]}
//   {"ok":true,"mode":"responses","model":...,"status":...,"text":...,"usage":{...}}
//   {"ok":true,"mode":"responses_stream","events":[type,...],"text":...,"status":...}
// and exits 0. On an error it prints, from the SDK's error,
//   {"ok":false,"mode":...,"name":"BadRequestError","status":400|null,"type":...,"code":...,"message":...}
// (an error in the middle of a stream adds "stage":"stream" and the "chunks" that came
// before it) and exits 1. Usage errors exit 2. No retries, a 120 s timeout, apiKey "none".
import { args, finish, load } from './sdk_client.mjs';

const MODES = ['chat', 'stream', 'completion', 'embedding', 'models', 'responses',
  'responses_stream'];

const { baseURL, mode, model, last: extraArg, usage } = args('openai_client', MODES,
  'EXTRA_JSON');
let extra = {};
if (extraArg !== undefined && extraArg !== '') {
  try {
    extra = JSON.parse(extraArg);
  } catch (e) {
    usage(`EXTRA is not JSON: ${e.message}`);
  }
  if (extra === null || typeof extra !== 'object' || Array.isArray(extra))
    usage('EXTRA must be a JSON object');
}
const OpenAI = load('openai', 'MLO_OPENAI_DIR', 'setup-openai.sh', usage);

// set when an error comes after the stream started: where it stopped
let midStream = {};
const client = new OpenAI({ baseURL, apiKey: 'none', maxRetries: 0, timeout: 120_000 });

// the first error code down the chain of causes (fetch's TypeError wraps ECONNREFUSED)
function rootCause(c) {
  let last = c;
  for (let i = 0; c && i < 8; i++, c = c.cause) {
    if (typeof c.code === 'string') return c.code;
    last = c;
  }
  return String(last?.message ?? last);
}

function failure(e, more) {
  const api = e instanceof OpenAI.APIError;
  return {
    ok: false,
    mode,
    ...more,
    name: e?.constructor?.name ?? null,
    status: api && typeof e.status === 'number' ? e.status : null,
    type: (api ? e.type : null) ?? null,
    code: (api ? e.code : e?.code) ?? null,
    message: String(e?.message ?? e),
    // what lies under a connection error (ECONNREFUSED, a reset, a timeout)
    ...(e?.cause ? { cause: rootCause(e.cause) } : {}),
  };
}

async function run() {
  switch (mode) {
  case 'chat': {
    const r = await client.chat.completions.create({
      model, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, ...extra });
    const c = r.choices?.[0];
    return { model: r.model, text: c?.message?.content ?? null,
      finish_reason: c?.finish_reason ?? null, usage: r.usage ?? null };
  }
  case 'stream': {
    const s = await client.chat.completions.create({
      model, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 16, stream: true,
      ...extra });
    let chunks = 0, contentChunks = 0, text = '', finish = null, m = null, usage = null;
    try {
      for await (const ch of s) {
        chunks++;
        m = ch.model ?? m;
        if (ch.usage) usage = ch.usage;
        for (const c of ch.choices ?? []) {
          if (typeof c.delta?.content === 'string' && c.delta.content !== '') {
            contentChunks++;
            text += c.delta.content;
          }
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
    } catch (e) {
      midStream = { stage: 'stream', chunks };
      throw e;
    }
    return { chunks, content_chunks: contentChunks, text, finish_reason: finish, model: m,
      usage };
  }
  case 'completion': {
    const r = await client.completions.create({ model, prompt: 'Hello', max_tokens: 8,
      ...extra });
    const c = r.choices?.[0];
    return { model: r.model, text: c?.text ?? null, finish_reason: c?.finish_reason ?? null,
      usage: r.usage ?? null };
  }
  case 'embedding': {
    const r = await client.embeddings.create({ model, input: 'hello world', ...extra });
    const d = r.data ?? [];
    return { model: r.model, count: d.length, dims: d[0]?.embedding?.length ?? 0,
      usage: r.usage ?? null };
  }
  case 'models': {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    return { ids };
  }
  case 'responses': {
    const r = await client.responses.create({ model, input: 'Hello', max_output_tokens: 8,
      ...extra });
    return { model: r.model, status: r.status, text: r.output_text ?? null,
      usage: r.usage ?? null };
  }
  case 'responses_stream': {
    const s = await client.responses.create({ model, input: 'Hello', max_output_tokens: 16,
      stream: true, ...extra });
    const events = [];
    let text = '', status = null;
    try {
      for await (const ev of s) {
        events.push(ev.type);
        if (ev.type === 'response.output_text.delta') text += ev.delta;
        if (ev.type === 'response.completed') status = ev.response?.status ?? null;
      }
    } catch (e) {
      midStream = { stage: 'stream', chunks: events.length };
      throw e;
    }
    return { events, text, status };
  }
  }
}

await finish(mode, run, failure, () => midStream);
