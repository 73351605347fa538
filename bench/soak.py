#!/usr/bin/env python3
"""Traffic and trouble for bench/soak.sh (Python 3 standard library only). Not a test.

    soak.py --port P --pid DAEMON_PID --config FILE --models-dir DIR --spare FILE \
            --models a,b,c --extra extra --seconds S --warmup S --clients N --out FILE

bench/soak.sh has started mloffloadd (pid DAEMON_PID, port P) with the models a, b, c in
DIR on a fake GPU that holds two of them. This script then runs two phases:

  warm-up  WARMUP seconds of the client mix below, no trouble; then the daemon is brought
           to rest (no request open, every model unloaded) and its RSS and open
           descriptors are read: the baseline.
  soak     SECONDS seconds of the client mix while a trouble thread, at jittered
           intervals, kill -9s one llama-server child of the daemon (--kill-every),
           rewrites the config file's idle_ttl_s and sends SIGHUP (--hup-every), and
           copies the spare model into DIR as EXTRA.gguf or removes it again, then
           POST /models/scan (--scan-every). At rest again, RSS and descriptors are read.

Each of the N client threads sends requests one after another, each on its own
connection: /v1/chat/completions or /v1/completions, streamed or not, for a, b, c, or
EXTRA (which exists only half of the time), some of them cut off by the client on
purpose (a stream closed after its first event, a non-streamed request given up after
a fraction of a second). Every request ends in exactly one of:

  answered  2xx with a whole body: JSON with "choices", or a stream that ends with
            "data: [DONE]"
  refused   an HTTP error whose body is JSON {"error": {...}} (counted by its code), or
            a stream that ends with an error event (counted as "stream:CODE")
  cut       the client hung up on purpose before the end
  lost      anything else: no answer, a reset, a body cut short, a 2xx that is not a
            whole answer, an error without a JSON reason, a stream that stops without
            [DONE] or an error event, no answer within --timeout

A monitor thread reads the daemon's /proc entries every second and records every
llama-server child it sees (pid, start time), so that soak.sh can look for orphans once
the daemon has stopped. The result is one JSON object written to --out. When
MLOFFLOAD_API_KEY is set, every request carries "Authorization: Bearer KEY".
"""
import argparse
import collections
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sys
import threading
import time

API_KEY = os.environ.get("MLOFFLOAD_API_KEY", "")
ABORT = threading.Event()  # set by SIGINT or SIGTERM: every loop ends, nothing is judged
PROMPT = "Tell me a story about a lighthouse."
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def log(msg):
    print("soak.py: %s" % msg, file=sys.stderr, flush=True)


def headers(json_body=True):
    h = {}
    if json_body:
        h["Content-Type"] = "application/json"
    if API_KEY:
        h["Authorization"] = "Bearer " + API_KEY
    return h


class Daemon:
    """The daemon under test: its control routes and its /proc entries."""

    def __init__(self, port, pid):
        self.port = port
        self.pid = pid

    def call(self, method, path, body=None, timeout=60):
        """One request on a fresh connection: (status, parsed JSON or raw bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=data, headers=headers(data is not None))
            r = c.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw
        finally:
            c.close()

    def metric(self, name):
        st, raw = self.call("GET", "/metrics")
        if st != 200:
            raise RuntimeError("GET /metrics answered %d" % st)
        for line in raw.decode().splitlines():
            f = line.split()
            if len(f) == 2 and f[0] == name:
                return float(f[1])
        raise RuntimeError("no %s in /metrics" % name)

    def loaded(self):
        st, j = self.call("GET", "/status")
        if st != 200 or not isinstance(j, dict):
            raise RuntimeError("GET /status answered %d" % st)
        return j.get("loaded") or []

    def alive(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def fd_kinds(self):
        """What the daemon's descriptors are: {"pipe": n, "/path": n, "tcp LISTEN": n,
        "tcp CLOSE_WAIT upstream": n, "tcp ESTABLISHED client": n, "unix": n, ...}; a
        TCP socket is "client" when its local port is the daemon's, else "upstream"."""
        tcp = {}
        for name in ("tcp", "tcp6"):
            try:
                with open("/proc/net/" + name) as f:
                    next(f)
                    for line in f:
                        x = line.split()
                        lport = int(x[1].rsplit(":", 1)[1], 16)
                        st = TCP_STATES.get(x[3], x[3])
                        side = "" if st == "LISTEN" else (
                            " client" if lport == self.port else " upstream")
                        tcp[x[9]] = "tcp " + st + side
            except OSError:
                pass
        out = collections.Counter()
        base = "/proc/%d/fd" % self.pid
        for fd in os.listdir(base):
            try:
                t = os.readlink(os.path.join(base, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                t = tcp.get(t[8:-1], "socket (not tcp)")
            elif ":[" in t:
                t = t.split(":[", 1)[0]
            out[t] += 1
        return out

    def children(self, any_name=False):
        """llama-server processes whose parent is the daemon: {pid: start time}; with
        ANY_NAME, every child of the daemon: {pid: "name state"}."""
        out = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    s = f.read()
            except OSError:
                continue
            comm = s[s.index("(") + 1:s.rindex(")")]
            rest = s[s.rindex(")") + 2:].split()
            if int(rest[1]) != self.pid:
                continue
            if any_name:
                out[int(d)] = "%s %s" % (comm, rest[0])
            elif comm == "llama-server":
                out[int(d)] = int(rest[19])
        return out


class Stats:
    """Outcomes of the client requests of one phase, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.answered = 0
        self.cut = 0
        self.refused = collections.Counter()
        self.lost = collections.Counter()
        self.lost_samples = []
        self.refused_samples = collections.defaultdict(list)
        self.by_kind = collections.Counter()

    def add(self, kind, outcome, detail="", note=""):
        """One request's outcome; DETAIL: the code or the reason; NOTE: the model and the
        error's message, kept for the first 3 refusals of each code."""
        with self.lock:
            self.sent += 1
            self.by_kind[kind] += 1
            if outcome == "answered":
                self.answered += 1
            elif outcome == "cut":
                self.cut += 1
            elif outcome == "refused":
                self.refused[detail] += 1
                if len(self.refused_samples[detail]) < 3:
                    self.refused_samples[detail].append("%s %s, %s" % (
                        time.strftime("%H:%M:%S"), kind, " | ".join(note[:300].splitlines())))
            else:
                self.lost[detail.split(":")[0]] += 1
                if len(self.lost_samples) < 20:
                    self.lost_samples.append("%s %s, %s: %s" % (
                        time.strftime("%H:%M:%S"), kind, note, detail))

    def as_dict(self):
        with self.lock:
            return {
                "sent": self.sent,
                "answered": self.answered,
                "refused": sum(self.refused.values()),
                "refused_by_code": dict(sorted(self.refused.items())),
                "refused_samples": dict(sorted(self.refused_samples.items())),
                "cut_by_client": self.cut,
                "lost": sum(self.lost.values()),
                "lost_by_reason": dict(sorted(self.lost.items())),
                "lost_samples": self.lost_samples,
                "by_kind": dict(sorted(self.by_kind.items())),
            }


def error_code(raw):
    """(code, message) of an OpenAI-shaped error body, or (None, None). llama-server's
    own errors carry a number as code (and a type): those read as upstream_TYPE_CODE."""
    try:
        e = json.loads(raw)["error"]
    except (ValueError, KeyError, TypeError):
        return None, None
    if not isinstance(e, dict):
        return None, None
    code, msg = e.get("code"), str(e.get("message", ""))
    if isinstance(code, str) and code:
        return code, msg
    if isinstance(code, int):
        return "upstream_%s_%d" % (e.get("type", "error"), code), msg
    return None, None


def request_body(path, model, stream, max_tokens):
    b = {"model": model, "max_tokens": max_tokens, "temperature": 0.8,
         "seed": random.randrange(1 << 30)}
    if path.endswith("chat/completions"):
        b["messages"] = [{"role": "user", "content": PROMPT}]
    else:
        b["prompt"] = PROMPT
    if stream:
        b["stream"] = True
    return json.dumps(b).encode()


def one_request(port, path, model, stream, cut, max_tokens, timeout):
    """Sends one request; returns (outcome, detail, note) as Stats.add takes them."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    r = None
    try:
        try:
            c.request("POST", path, body=request_body(path, model, stream, max_tokens),
                      headers=headers())
            if cut and not stream:
                c.sock.settimeout(random.uniform(0.05, 1.0))  # gives up after this
            r = c.getresponse()
        except socket.timeout:
            return ("cut", "", "") if cut and not stream else ("lost", "timeout: no status", "")
        except (OSError, http.client.HTTPException) as e:
            return "lost", "no status: %r" % e, ""
        try:
            if r.status >= 400 or not stream:
                raw = r.read()
            else:
                return read_stream(r, cut)
        except socket.timeout:
            return ("cut", "", "") if cut else ("lost", "timeout: body of a %d" % r.status, "")
        except (OSError, http.client.HTTPException) as e:
            return "lost", "body cut short: status %d, %r" % (r.status, e), ""
        if 200 <= r.status < 300:
            try:
                j = json.loads(raw)
                if isinstance(j, dict) and j.get("choices"):
                    return "answered", "", ""
            except ValueError:
                pass
            return "lost", "2xx without choices: %r" % raw[:200], ""
        code, msg = error_code(raw)
        if r.status >= 400 and code:
            return "refused", code, "%d %s" % (r.status, msg)
        return "lost", "status %d without a JSON error: %r" % (r.status, raw[:200]), ""
    finally:
        if r is not None:
            r.close()  # the socket closes with the last of its file objects
        c.close()


def read_stream(r, cut):
    """The events of a streamed 200 until [DONE], an error event or the end."""
    err, note = None, ""
    while True:
        line = r.readline()
        if not line:
            if err:
                return "refused", "stream:" + err, note
            return "lost", "stream ended without [DONE] or an error event", ""
        if not line.startswith(b"data: "):
            continue
        payload = line[6:].strip()
        if payload == b"[DONE]":
            return ("refused", "stream:" + err, note) if err else ("answered", "", "")
        if cut:
            return "cut", "", ""  # the caller closes the connection after one event
        try:
            j = json.loads(payload)
        except ValueError:
            return "lost", "a stream event that is not JSON: %r" % payload[:200], ""
        code, msg = error_code(payload)
        if code:
            err, note = code, msg
        elif isinstance(j, dict) and "error" in j:  # not a token "error" in the text
            err, note = "error_without_code", repr(payload[:300])


def client(port, models, extra, stats, stop, timeout, alive):
    rnd = random.Random()
    while not stop.is_set() and not ABORT.is_set():
        model = extra if extra and rnd.random() < 0.08 else rnd.choice(models)
        path = rnd.choice(("/v1/chat/completions", "/v1/completions"))
        stream = rnd.random() < 0.5
        cut = rnd.random() < 0.15
        max_tokens = rnd.randint(1, 48)
        kind = "%s %s%s" % (path.rsplit("/", 1)[1], "stream" if stream else "whole",
                            " cut" if cut else "")
        outcome, detail, note = one_request(port, path, model, stream, cut, max_tokens, timeout)
        stats.add(kind, outcome, detail, "model %s: %s" % (model, note) if note else "model " + model)
        if outcome == "lost" and detail.startswith("no status") and not alive():
            stop.set()  # the daemon is gone: one lost request says it, not thousands


class Monitor(threading.Thread):
    """Every second: the daemon's RSS and descriptors (highs) and its llama-server
    children (every one ever seen). Sets `dead` when the daemon has gone."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d = d
        self.stop = threading.Event()
        self.seen = {}
        self.rss_max = 0
        self.fds_max = 0
        self.dead = False

    def run(self):
        while not self.stop.is_set():
            if not self.d.alive():
                self.dead = True
                log("the daemon (pid %d) is gone" % self.d.pid)
                return
            try:
                self.rss_max = max(self.rss_max, self.d.rss_kib())
                self.fds_max = max(self.fds_max, self.d.fds())
                self.seen.update(self.d.children())
            except OSError:
                pass
            self.stop.wait(1.0)


class Trouble(threading.Thread):
    """kill -9 of a child, SIGHUP with a changed idle TTL, a changing models folder."""

    def __init__(self, d, args, stop):
        super().__init__(daemon=True)
        self.d, self.a, self.stop = d, args, stop
        self.counts = collections.Counter()
        self.notes = []
        self.ttl = 300

    def note(self, what):
        self.notes.append("%s %s" % (time.strftime("%H:%M:%S"), what))
        log(what)

    def kill_child(self):
        kids = self.d.children()
        try:
            listed = {m.get("pid") for m in self.d.loaded()}
        except (OSError, RuntimeError, http.client.HTTPException) as e:
            self.counts["status_failed"] += 1
            self.note("GET /status failed: %r" % e)
            listed = set()
        # only a llama-server whose parent is the daemon, preferably one /status lists
        pick = [p for p in kids if p in listed] or list(kids)
        if not pick:
            self.counts["kill_skipped"] += 1
            return
        pid = random.choice(pick)
        try:
            os.kill(pid, signal.SIGKILL)
            self.counts["kill"] += 1
            self.note("kill -9 child %d" % pid)
        except OSError as e:
            self.note("kill -9 %d: %r" % (pid, e))

    def hup(self):
        self.ttl = 600 if self.ttl == 300 else 300
        with open(self.a.config) as f:
            text = f.read()
        lines = [("idle_ttl_s = %d" % self.ttl) if ln.startswith("idle_ttl_s") else ln
                 for ln in text.splitlines()]
        tmp = self.a.config + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.a.config)
        os.kill(self.d.pid, signal.SIGHUP)
        self.counts["sighup"] += 1
        self.note("SIGHUP (idle_ttl_s = %d)" % self.ttl)

    def scan(self):
        path = os.path.join(self.a.models_dir, self.a.extra + ".gguf")
        if os.path.exists(path):
            os.remove(path)
            what = "rm"
        else:
            shutil.copyfile(self.a.spare, path)
            what = "cp"
        self.counts["folder_" + what] += 1
        try:
            st, j = self.d.call("POST", "/models/scan", timeout=120)
        except (OSError, http.client.HTTPException) as e:
            st, j = 0, repr(e)
        if st == 200 and isinstance(j, dict):
            self.counts["scan"] += 1
            self.note("%s %s.gguf, scan: added %s removed %s errors %s" % (
                what, self.a.extra, j.get("added"), j.get("removed"), j.get("errors")))
        else:
            self.counts["scan_failed"] += 1
            self.note("%s %s.gguf, POST /models/scan answered %s %r" % (what, self.a.extra, st, j))

    def run(self):
        def nxt(every):
            return time.monotonic() + every * random.uniform(0.75, 1.25)
        due = {"kill": nxt(self.a.kill_every), "hup": nxt(self.a.hup_every),
               "scan": nxt(self.a.scan_every)}
        acts = {"kill": (self.kill_child, self.a.kill_every), "hup": (self.hup, self.a.hup_every),
                "scan": (self.scan, self.a.scan_every)}
        while not self.stop.is_set():
            now = time.monotonic()
            for k, t in due.items():
                if now >= t and acts[k][1] > 0:
                    acts[k][0]()
                    due[k] = nxt(acts[k][1])
            self.stop.wait(0.2)


def traffic(d, args, seconds, trouble):
    """N clients for SECONDS (and the trouble thread when asked); returns the stats."""
    stats, stop = Stats(), threading.Event()
    models = args.models.split(",")
    # daemon threads: after a ^C the script ends without waiting for their requests
    threads = [threading.Thread(target=client, args=(d.port, models, args.extra, stats, stop,
                                                     args.timeout, d.alive), daemon=True)
               for _ in range(args.clients)]
    t = Trouble(d, args, stop) if trouble else None
    for th in threads + ([t] if t else []):
        th.start()
    end = time.monotonic() + seconds
    last = time.monotonic()
    while time.monotonic() < end and d.alive() and not ABORT.is_set():
        ABORT.wait(1)
        if time.monotonic() - last >= 30:
            last = time.monotonic()
            s = stats.as_dict()
            log("%d s left: sent %d, answered %d, refused %d, cut %d, lost %d" % (
                end - last, s["sent"], s["answered"], s["refused"], s["cut_by_client"], s["lost"]))
    stop.set()
    for th in threads + ([t] if t else []):
        if not ABORT.is_set():
            th.join()
    return stats, t


def at_rest(d, bound_s):
    """Waits until the daemon holds no /v1 request, unloads every model, waits until it
    has no child process left (none running, none unreaped) and its descriptor count
    stays the same for 2 s. Returns {rss_kib, fds, fd_kinds, children}."""
    end = time.monotonic() + bound_s
    while d.metric("mloffload_v1_waiting") + d.metric("mloffload_v1_in_flight") > 0:
        if ABORT.is_set():
            raise RuntimeError("interrupted")
        if time.monotonic() > end:
            raise RuntimeError("the daemon still holds /v1 requests after %d s" % bound_s)
        time.sleep(0.2)
    while True:
        loaded = d.loaded()
        if not loaded:
            break
        for m in loaded:
            st, j = d.call("POST", "/unload", {"model": m["model"]}, timeout=bound_s)
            if st != 200:
                log("POST /unload %s answered %d %r" % (m["model"], st, j))
        if ABORT.is_set():
            raise RuntimeError("interrupted")
        if time.monotonic() > end:
            raise RuntimeError("models still loaded after %d s: %r" % (bound_s, loaded))
        time.sleep(0.2)
    kids_end = time.monotonic() + 10
    while d.children(True) and time.monotonic() < kids_end:
        time.sleep(0.2)
    prev, same_since = d.fds(), time.monotonic()
    while time.monotonic() - same_since < 2 and time.monotonic() < end:
        time.sleep(0.25)
        cur = d.fds()
        if cur != prev:
            prev, same_since = cur, time.monotonic()
    kids = d.children(True)
    return {"rss_kib": d.rss_kib(), "fds": prev, "fd_kinds": dict(d.fd_kinds()),
            "children": ["%d %s" % kv for kv in sorted(kids.items())]}


def phases(d, a, res):
    """The warm-up, the first rest, the soak, the last rest; fills RES. False when the
    daemon died on the way."""
    log("warm-up: %d s of traffic, no trouble" % a.warmup)
    warm, _ = traffic(d, a, a.warmup, False)
    res["warmup"] = warm.as_dict()
    if not d.alive() or ABORT.is_set():
        return False
    res["start"] = at_rest(d, a.timeout)
    log("at rest after the warm-up: %r" % res["start"])
    log("soak: %d s of traffic from %d clients with trouble" % (a.seconds, a.clients))
    t0 = time.monotonic()
    soak, trouble = traffic(d, a, a.seconds, True)
    res["soak_wall_s"] = round(time.monotonic() - t0, 1)
    res["soak"] = soak.as_dict()
    res["trouble"] = dict(trouble.counts)
    res["trouble_log"] = trouble.notes
    if not d.alive() or ABORT.is_set():
        return False
    res["end"] = at_rest(d, a.timeout)
    log("at rest at the end: %r" % res["end"])
    return True


def main():
    p = argparse.ArgumentParser()
    for name, typ in (("port", int), ("pid", int), ("config", str), ("models-dir", str),
                      ("spare", str), ("models", str), ("extra", str), ("seconds", int),
                      ("warmup", int), ("clients", int), ("out", str)):
        p.add_argument("--" + name, type=typ, required=True)
    p.add_argument("--timeout", type=int, default=300)
    p.add_argument("--kill-every", type=float, default=60)
    p.add_argument("--hup-every", type=float, default=45)
    p.add_argument("--scan-every", type=float, default=30)
    a = p.parse_args()
    signal.signal(signal.SIGINT, lambda *_: ABORT.set())
    signal.signal(signal.SIGTERM, lambda *_: ABORT.set())
    d = Daemon(a.port, a.pid)
    mon = Monitor(d)
    mon.start()
    res = {"seconds": a.seconds, "warmup_s": a.warmup, "clients": a.clients}

    ok = False
    try:
        ok = phases(d, a, res)
    except (OSError, RuntimeError, http.client.HTTPException) as e:
        res["error"] = repr(e)
        log("stopped: %r" % e)
    mon.stop.set()
    mon.join()
    res["daemon_alive"] = d.alive() and not mon.dead
    res["complete"] = ok
    res["interrupted"] = ABORT.is_set()
    res["rss_max_kib"] = mon.rss_max
    res["fds_max"] = mon.fds_max
    res["children_seen"] = [[pid, st] for pid, st in sorted(mon.seen.items())]
    with open(a.out, "w") as f:
        json.dump(res, f)
    if ABORT.is_set():
        return 130
    return 0 if ok and res["daemon_alive"] else 1


if __name__ == "__main__":
    sys.exit(main())
