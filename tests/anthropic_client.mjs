// anthropic_client.mjs: the official `@anthropic-ai/sdk` npm package as a real third-party
// client of an Anthropic-compatible endpoint (mloffloadd's /v1/messages).
// scripts/setup-anthropic.sh installs the pinned package and prints its folder, which
// MLO_ANTHROPIC_DIR names.
//
//   node tests/anthropic_client.mjs BASE_URL MODE MODEL [API_KEY]
//
// BASE_URL is the server's root (the SDK adds /v1/messages). MODE is one of
//   message   messages.create, one user message "Hello", max_tokens 8
//   stream    the same streamed, max_tokens 16: the event types in order, the text joined
//   count     messages.countTokens of the same message
// API_KEY, optional, goes in the x-api-key header (default "none").
//
// Prints one JSON line on stdout:
//   {"ok":true,"mode":"message","model":...,"type":"message","text":...,"stop_reason":...,"usage":{...}}
//   {"ok":true,"mode":"stream","events":[type,...],"text":...,"stop_reason":...}
//   {"ok":true,"mode":"count","input_tokens":N}
// and exits 0. On an error, from the SDK's error:
//   {"ok":false,"mode":...,"name":"NotFoundError","status":404|null,"type":...,"message":...}
// (mid-stream adds "stage":"stream") and exits 1. Usage errors exit 2. No retries.
import { args, finish, load } from './sdk_client.mjs';

const MODES = ['message', 'stream', 'count'];

const { baseURL, mode, model, last: apiKey, usage } = args('anthropic_client', MODES,
  'API_KEY');
const Anthropic = load('@anthropic-ai/sdk', 'MLO_ANTHROPIC_DIR', 'setup-anthropic.sh', usage);

let midStream = {};
const client = new Anthropic({ baseURL, apiKey: apiKey || 'none', maxRetries: 0,
  timeout: 120_000 });
const messages = [{ role: 'user', content: 'Hello' }];

function failure(e, more) {
  const api = e instanceof Anthropic.APIError;
  return {
    ok: false,
    mode,
    ...more,
    name: e?.constructor?.name ?? null,
    status: api && typeof e.status === 'number' ? e.status : null,
    // Anthropic's error body: {"type":"error","error":{"type":...,"message":...}}
    type: (api ? e.error?.error?.type : null) ?? null,
    message: String(e?.message ?? e),
  };
}

async function run() {
  switch (mode) {
  case 'message': {
    const r = await client.messages.create({ model, max_tokens: 8, messages });
    const text = (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');
    return { model: r.model, type: r.type, text, stop_reason: r.stop_reason,
      usage: r.usage ?? null };
  }
  case 'stream': {
    const s = await client.messages.create({ model, max_tokens: 16, messages, stream: true });
    const events = [];
    let text = '', stop = null;
    try {
      for await (const ev of s) {
        events.push(ev.type);
        if (ev.type === 'content_block_delta' && ev.delta?.type === 'text_delta')
          text += ev.delta.text;
        if (ev.type === 'message_delta') stop = ev.delta?.stop_reason ?? stop;
      }
    } catch (e) {
      midStream = { stage: 'stream', events };
      throw e;
    }
    return { events, text, stop_reason: stop };
  }
  case 'count': {
    const r = await client.messages.countTokens({ model, messages });
    return { input_tokens: r.input_tokens };
  }
  }
}

await finish(mode, run, failure, () => midStream);
