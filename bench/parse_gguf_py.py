"""parse_gguf_py: times llama.cpp's gguf-py reader, GGUFReader(path) (mode "r"), in-process on a
warm page cache (see bench/parse_bench.c for the method and output).

Usage: PYTHONPATH=<llama.cpp>/gguf-py /usr/bin/python3 parse_gguf_py.py ITERS BUDGET_S FILE...
Each file: up to ITERS timed parses, stopping early once BUDGET_S seconds have been spent on
the file (at least min(MIN_ITERS, ITERS) parses). No untimed warm-up parse: one costs seconds,
CPython has no JIT to warm, and bench/parse.sh runs this after the C and JS programs have
read the same files, so the page cache is warm already.
"""
import gc
import sys
import time

from gguf import GGUFReader

MIN_ITERS = 3
PSEUDO_FIELDS = ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count")


def parse_once(path):
    r = GGUFReader(path, "r")
    n_kv = len(r.fields) - sum(1 for k in PSEUDO_FIELDS if k in r.fields)
    out = (n_kv, len(r.tensors), int(r.data_offset))
    del r
    return out


def main():
    if len(sys.argv) < 4:
        print("usage: parse_gguf_py.py ITERS BUDGET_S FILE...", file=sys.stderr)
        return 2
    iters, budget = int(sys.argv[1]), float(sys.argv[2])
    for path in sys.argv[3:]:
        t = []
        start = time.perf_counter()
        while len(t) < iters:
            gc.collect()  # collect the previous reader outside the timed region
            t0 = time.perf_counter()
            try:
                c = parse_once(path)
            except Exception as e:  # report and go on with the next file
                msg = str(e).replace("\t", " ").replace("\n", " ")
                print("\t".join(["RESULT", path, "gguf-py", "0", "-", "-", "-", "-", msg]),
                      flush=True)
                break
            t1 = time.perf_counter()
            t.append((t1 - t0) * 1e3)
            if t1 - start > budget and len(t) >= min(MIN_ITERS, iters):
                break
        if not t:
            continue
        t.sort()
        n = len(t)
        median = t[n // 2] if n % 2 else (t[n // 2 - 1] + t[n // 2]) / 2
        print("\t".join(["RESULT", path, "gguf-py", str(n), f"{median:.4f}", f"{t[0]:.4f}",
                         str(c[0]), str(c[1]), str(c[2])]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
