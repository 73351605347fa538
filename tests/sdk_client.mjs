// sdk_client.mjs: what the SDK-driving test clients share (tests/openai_client.mjs,
// tests/anthropic_client.mjs): reading the command line, loading the pinned package
// from the cache folder its setup script prints, and the one JSON line each prints.
import { createRequire } from 'node:module';
import { join } from 'node:path';

// Writes obj as one JSON line on stdout, then exits with code.
export function out(obj, code) {
  process.stdout.write(JSON.stringify(obj) + '\n', () => process.exit(code));
}

// The command line of tool `name` (BASE_URL MODE MODEL [LAST]), checked against modes.
// Returns { baseURL, mode, model, last, usage }; usage(msg) says what is wrong and exits 2.
export function args(name, modes, lastName) {
  const usage = (msg) => {
    process.stderr.write(`${name}: ${msg}\n` +
      `usage: node tests/${name}.mjs BASE_URL ${modes.join('|')} MODEL [${lastName}]\n`);
    process.exit(2);
  };
  const [baseURL, mode, model, last] = process.argv.slice(2);
  if (!baseURL || !mode || model === undefined) usage('missing arguments');
  if (!modes.includes(mode)) usage(`unknown mode '${mode}'`);
  return { baseURL, mode, model, last, usage };
}

// The package pkg's client class, resolved from the folder that environment variable env
// names (set from scripts/<setup>), not from this clone: the package lives there.
export function load(pkg, env, setup, usage) {
  const dir = process.env[env];
  if (!dir) usage(`${env} is not set (scripts/${setup} prints it)`);
  try {
    const mod = createRequire(join(dir, 'package.json'))(pkg);
    return mod.OpenAI ?? mod.Anthropic ?? mod.default ?? mod;
  } catch (e) {
    usage(`cannot load ${pkg} from ${dir}: ${e.message}`);
  }
}

// Runs run() and prints {"ok":true,"mode":...,...result} (exit 0), or failure(e, more())
// (exit 1): more() says where a stream stopped, when it did.
export async function finish(mode, run, failure, more) {
  try {
    out({ ok: true, mode, ...(await run()) }, 0);
  } catch (e) {
    out(failure(e, more()), 1);
  }
}
