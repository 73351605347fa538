#!/usr/bin/env python3
"""Client side of bench/proxy.sh (Python 3 standard library only). Not a test.

Three measurements, each printing one JSON object on stdout:

  proxy.py latency DIRECT_PORT DAEMON_PORT MODEL N WARMUP [ROUTE]
      N non-streaming chat completions (max_tokens 1, temperature 0, seed 1) to each
      port, alternating the two (the one that goes first changes every round), one
      keep-alive connection per port. Times each request from the send to the last
      byte of the body. ROUTE: chat (the default, /v1/chat/completions), responses
      (/v1/responses, max_output_tokens 1) or messages (Anthropic's /v1/messages,
      max_tokens 1), the same prompt.
  proxy.py stream DIRECT_PORT DAEMON_PORT MODEL ROUNDS MAX_TOKENS
      ROUNDS streamed chat completions (max_tokens MAX_TOKENS, ignore_eos) to each port,
      alternating. Records the arrival time of every SSE event ("data: ..." line) at
      the client.
  proxy.py table SCRATCH N
      prints step 1's rows from SCRATCH/latency*.json (bench/proxy.sh LATENCY_ONLY=1).
  proxy.py mix PORT MODELS N THREADS MAX_TOKENS
      N chat completions naming the models of MODELS (comma-separated) in turn
      (a, b, c, a, ...), cut into THREADS contiguous shares, one thread per share sending
      its share in order on its own keep-alive connection; all threads start together.

Every request has the same body apart from the model (and stream/max_tokens), so that
the backend does the same work through either path: llama-server keeps the prompt in
a slot's cache, and temperature 0 with a fixed seed gives the same tokens.
"""
import http.client
import json
import os
import statistics
import sys
import threading
import time

PROMPT = "Hello"
TIMEOUT_S = 120


def body(model, max_tokens, stream=False):
    b = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 1,
    }
    if stream:
        b["stream"] = True
        b["ignore_eos"] = True
    return json.dumps(b).encode()


HEADERS = {"Content-Type": "application/json"}
# the child's own API key (mloffloadd gives each llama-server a random one), sent to both
# ports: the daemon without keys of its own ignores it
if os.environ.get("PROXY_CHILD_KEY"):
    HEADERS["Authorization"] = "Bearer " + os.environ["PROXY_CHILD_KEY"]

# route: (path, body, the answer's text)
ROUTES = {
    "chat": ("/v1/chat/completions", lambda m, n: body(m, n),
             lambda j: j["choices"][0]["message"]["content"]),
    "responses": ("/v1/responses", lambda m, n: json.dumps({
        "model": m, "input": PROMPT, "max_output_tokens": n, "temperature": 0,
        "seed": 1}).encode(),
        lambda j: "".join(c.get("text", "") for o in j["output"] for c in o.get("content", []))),
    "messages": ("/v1/messages", lambda m, n: json.dumps({
        "model": m, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": n,
        "temperature": 0, "seed": 1}).encode(),
        lambda j: "".join(c.get("text", "") for c in j["content"])),
}


class Conn:
    """One keep-alive connection; reconnects if the server closed it."""

    def __init__(self, port):
        self.port = port
        self.c = None
        self.connects = 0

    def connect(self):
        if self.c is None:
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
            self.c.connect()
            self.connects += 1

    def post(self, path, data):
        for attempt in (0, 1):
            self.connect()
            try:
                self.c.request("POST", path, body=data, headers=HEADERS)
                return self.c.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.c.close()
                self.c = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


def pct(v, p):
    """Nearest-rank percentile of v (p in 0..100)."""
    s = sorted(v)
    k = max(0, min(len(s) - 1, -(-p * len(s) // 100) - 1))
    return s[int(k)]


def summary(v):
    return {
        "n": len(v),
        "p50": pct(v, 50),
        "p90": pct(v, 90),
        "p99": pct(v, 99),
        "mean": statistics.fmean(v) if v else 0,
        "min": min(v) if v else 0,
        "max": max(v) if v else 0,
    }


def one(conn, data, path="/v1/chat/completions"):
    """One non-streaming request: (ms from send to the end of the body, status, body).
    A connection the server closed after the previous answer is opened again first,
    outside the time (llama-server closes a keep-alive connection every 100 requests)."""
    conn.connect()
    t0 = time.perf_counter()
    r = conn.post(path, data)
    b = r.read()
    ms = (time.perf_counter() - t0) * 1000
    if r.getheader("Connection", "").lower() == "close":
        conn.close()
    return ms, r.status, b


def latency(direct, daemon, model, n, warmup, route="chat"):
    path, make, text = ROUTES[route]
    data = make(model, 1)
    conns = {"direct": Conn(direct), "daemon": Conn(daemon)}
    times = {"direct": [], "daemon": []}
    texts = {}
    for i in range(warmup + n):
        order = ("direct", "daemon") if i % 2 == 0 else ("daemon", "direct")
        for k in order:
            ms, status, b = one(conns[k], data, path)
            if status != 200:
                sys.exit(f"proxy.py latency: {k} {path} answered {status}: {b[:300]!r}")
            if i >= warmup:
                times[k].append(ms)
            texts[k] = text(json.loads(b))
    for c in conns.values():
        c.close()
    out = {k: summary(v) for k, v in times.items()}
    out["same_answer"] = texts["direct"] == texts["daemon"]
    # connections opened: 1 each when keep-alive held for all the requests
    out["connects"] = {k: c.connects for k, c in conns.items()}
    out["raw"] = times
    return out


def stream_once(port, data):
    """One streamed request on a fresh connection: the arrival times (s, from the send)
    of its SSE events, and how many distinct reads of the socket delivered them."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    c.connect()
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body=data, headers=HEADERS)
    r = c.getresponse()
    if r.status != 200:
        sys.exit(f"proxy.py stream: port {port} answered {r.status}: {r.read()[:300]!r}")
    events, text, done = [], [], False
    while True:
        line = r.readline()
        if not line:
            break
        t = time.perf_counter() - t0
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            done = True
            events.append(t)
            continue
        events.append(t)
        j = json.loads(payload)
        if "error" in j:
            sys.exit(f"proxy.py stream: port {port} sent an error event: {payload[:300]!r}")
        for ch in j.get("choices", []):
            text.append(ch.get("delta", {}).get("content") or "")
    c.close()
    if not done:
        sys.exit(f"proxy.py stream: port {port}: the stream ended without [DONE]")
    return events, "".join(text)


def stream(direct, daemon, model, rounds, max_tokens):
    data = body(model, max_tokens, stream=True)
    ports = {"direct": direct, "daemon": daemon}
    ttfc = {"direct": [], "daemon": []}
    gaps = {"direct": [], "daemon": []}
    total = {"direct": [], "daemon": []}
    nev = {"direct": [], "daemon": []}
    texts = {"direct": set(), "daemon": set()}
    # one untimed stream each first
    for k in ports:
        stream_once(ports[k], data)
    for i in range(rounds):
        order = ("direct", "daemon") if i % 2 == 0 else ("daemon", "direct")
        for k in order:
            ev, text = stream_once(ports[k], data)
            texts[k].add(text)
            ttfc[k].append(ev[0] * 1000)
            total[k].append(ev[-1] * 1000)
            nev[k].append(len(ev))
            gaps[k].extend((b - a) * 1000 for a, b in zip(ev, ev[1:]))
    out = {}
    for k in ports:
        out[k] = {
            "ttfc": summary(ttfc[k]),
            "gap": summary(gaps[k]),
            "total": summary(total[k]),
            "events": sorted(set(nev[k])),
            # gaps under 0.05 ms: events that came in together with the one before
            "same_read": sum(1 for g in gaps[k] if g < 0.05),
        }
    out["same_text"] = len(texts["direct"] | texts["daemon"]) == 1
    return out


def mix(port, models, n, threads, max_tokens):
    models = models.split(",")
    seq = [models[i % len(models)] for i in range(n)]
    shares = [seq[n * t // threads: n * (t + 1) // threads] for t in range(threads)]
    lat, errors = [], []
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def worker(share):
        conn = Conn(port)
        start.wait()
        for m in share:
            try:
                ms, status, b = one(conn, body(m, max_tokens))
            except Exception as e:  # noqa: BLE001 - a failed request is counted, not fatal
                with lock:
                    errors.append(f"{m}: {type(e).__name__}: {e}")
                conn.close()
                continue
            with lock:
                if status == 200:
                    lat.append(ms)
                else:
                    errors.append(f"{m}: {status} {b[:200]!r}")
        conn.close()

    ts = [threading.Thread(target=worker, args=(s,)) for s in shares]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "ok": len(lat), "errors": len(errors), "error_samples": errors[:5],
            "latency": summary(lat) if lat else None}


def table(d, n):
    """Step 1's rows (bench/proxy.sh with LATENCY_ONLY=1): p50, p99 each way per route."""
    fmt = "%-44s %12s %12s %9s %7s"
    print(fmt % ("measure", "direct", "via daemon", "added", "ratio"))
    for name in (line.split()[0] for line in open(d + "/cpu.tsv")):
        lat = json.load(open(d + "/latency" + ("" if name == "chat" else "-" + name) + ".json"))
        for p in ("p50", "p99"):
            a, b = lat["direct"][p], lat["daemon"][p]
            print(fmt % ("%s, 1 token, %s ms (%s each)" % (name, p, n), "%.3f" % a, "%.3f" % b,
                         "%+.3f" % (b - a), "%.2f" % (b / a) if a else "-"))
        print("  %s: the same answer both ways: %s; connections: %s" % (
            name, lat["same_answer"], lat["connects"]))
    print("mloffloadd's CPU time (all threads, /proc/PID/task/*/schedstat) per request through it,")
    print("relaying the child's log for the direct requests as well:")
    for line in open(d + "/cpu.tsv"):
        route, ns, reqs = line.split()
        print("  %-10s %6.0f us" % (route, int(ns) / 1000 / int(reqs)))


def main():
    a = sys.argv[1:]
    if len(a) in (6, 7) and a[0] == "latency" and (len(a) == 6 or a[6] in ROUTES):
        out = latency(int(a[1]), int(a[2]), a[3], int(a[4]), int(a[5]), *a[6:])
    elif len(a) == 6 and a[0] == "stream":
        out = stream(int(a[1]), int(a[2]), a[3], int(a[4]), int(a[5]))
    elif len(a) == 3 and a[0] == "table":
        return table(a[1], a[2])
    elif len(a) == 6 and a[0] == "mix":
        out = mix(int(a[1]), a[2], int(a[3]), int(a[4]), int(a[5]))
    else:
        sys.exit(__doc__)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
