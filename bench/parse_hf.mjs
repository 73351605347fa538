// parse_hf: times @huggingface/gguf's local-file reader, gguf(path, { allowLocalFile: true }),
// in-process on a warm page cache (see bench/parse_bench.c for the method and output).
// Usage: node parse_hf.mjs ITERS BUDGET_S FILE...
// Each file: 1 untimed warm-up parse (JIT), then up to ITERS timed parses, stopping early
// once BUDGET_S seconds have been spent on the file (at least 3 parses).
import { gguf } from "@huggingface/gguf";

const MIN_ITERS = 3;
const WARMUP = 1; // one parse runs the hot loops ~10^5 times: enough for V8 to optimise them
const [iters, budget] = [Number(process.argv[2]), Number(process.argv[3])];
const files = process.argv.slice(4);
if (!(iters > 0) || !(budget > 0) || files.length === 0) {
	console.error("usage: node parse_hf.mjs ITERS BUDGET_S FILE...");
	process.exit(2);
}

const PSEUDO_KEYS = ["version", "tensor_count", "kv_count"]; // not key-value pairs of the file

async function parseOnce(path) {
	const r = await gguf(path, { allowLocalFile: true });
	const nKv = Object.keys(r.metadata).length - PSEUDO_KEYS.filter((k) => k in r.metadata).length;
	return { nKv, nTensors: r.tensorInfos.length, headerBytes: Number(r.tensorDataOffset) };
}

for (const path of files) {
	let c;
	try {
		for (let i = 0; i < WARMUP; i++) c = await parseOnce(path);
	} catch (e) {
		const msg = String(e && e.message ? e.message : e).replace(/[\t\n]/g, " ");
		console.log(["RESULT", path, "@huggingface/gguf", 0, "-", "-", "-", "-", msg].join("\t"));
		continue;
	}
	const t = [];
	const start = process.hrtime.bigint();
	while (t.length < iters) {
		const t0 = process.hrtime.bigint();
		c = await parseOnce(path);
		const t1 = process.hrtime.bigint();
		t.push(Number(t1 - t0) / 1e6);
		if (Number(t1 - start) / 1e9 > budget && t.length >= MIN_ITERS) break;
	}
	t.sort((a, b) => a - b);
	const n = t.length;
	const median = n % 2 ? t[(n - 1) / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
	console.log(["RESULT", path, "@huggingface/gguf", n, median.toFixed(4), t[0].toFixed(4),
		c.nKv, c.nTensors, c.headerBytes].join("\t"));
}
