#!/usr/bin/env python3
"""ollama_double: a protocol double of Ollama's HTTP API, for the tests.

Ollama cannot be installed where the tests run, so this stands in for it. It is written
from Ollama's documented API (docs/api.md in github.com/ollama/ollama) and is the only
test double of the project besides the fake NVML library. It keeps a list of local
models (/api/tags) and the set of loaded ones (/api/ps), and serves:

  GET  /                 "Ollama is running"
  GET  /api/version      {"version": ...}
  GET  /api/tags         the local models
  GET  /api/ps           the loaded models, with size_vram and expires_at
  POST /api/generate     no prompt: load (keep_alive 0: unload); a prompt: a canned answer
  POST /api/chat         no messages: load (keep_alive 0: unload); messages: a canned answer

and the OpenAI-compatible routes (docs/openai.md), which load the model for the default
keep_alive and answer errors as {"error": {"message", "type", "param", "code"}}:

  POST /v1/chat/completions  a canned chat.completion (max_tokens: at most that many words)
  POST /v1/completions       a canned text_completion (likewise)
  POST /v1/embeddings        one embedding of 8 floats, derived from the text, per input
  GET  /v1/models            the local models

Loading is instant and takes no memory; a loaded model expires after keep_alive as in
Ollama (default 5m, a negative value keeps it forever). Answers are streamed as NDJSON
unless the request says "stream": false, as in Ollama; the /v1 routes stream only when
it says "stream": true, as server-sent events ending with "data: [DONE]".

Options:
  --port P        port on 127.0.0.1 (0: any free one; "listening PORT" is printed)
  --host H        address to listen on (default 127.0.0.1)
  --models FILE   JSON list of the local models: tag strings ("llama3.2:1b") or objects
                  with name and optionally size, size_vram, digest, family,
                  parameter_size, quantization_level, format
  --fail-ps       answer /api/ps with HTTP 500
  --garbage       answer every /api/* route with a body that is not JSON

The only line it writes on stdout is "listening PORT" (flushed); requests are logged on
stderr. Python 3 standard library only.
"""

import argparse
import datetime
import hashlib
import json
import random
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "0.6.2"
DEFAULT_KEEP_ALIVE = 300.0  # seconds (Ollama's 5m)
MAX_BODY = 1 << 20          # a request body larger than this is refused
CANNED = "The sky is blue because of Rayleigh scattering."

DEFAULT_MODELS = [
    {"name": "llama3.2:1b", "size": 1321098329, "family": "llama",
     "parameter_size": "1.2B", "quantization_level": "Q8_0"},
    {"name": "qwen2.5:0.5b", "size": 397821319, "family": "qwen2",
     "parameter_size": "494.03M", "quantization_level": "Q4_K_M"},
]


def now_iso(t=None):
    """Time t (epoch seconds, default now) in local time with offset, as Ollama writes."""
    if t is None:
        t = time.time()
    return datetime.datetime.fromtimestamp(t).astimezone().isoformat()


def full_name(name):
    """Ollama's model:tag form: a name without a tag means ":latest"."""
    if ":" not in name.rsplit("/", 1)[-1]:
        return name + ":latest"
    return name


def parse_keep_alive(v):
    """keep_alive as seconds: None for "forever" (negative), or raises ValueError.

    Ollama takes a number of seconds or a Go duration string ("5m", "1h30m", "0")."""
    if v is None:
        return DEFAULT_KEEP_ALIVE
    if isinstance(v, bool):
        raise ValueError("keep_alive: not a duration")
    if isinstance(v, (int, float)):
        secs = float(v)
    elif isinstance(v, str):
        s = v.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", s):
            secs = float(s)
        else:
            m = re.fullmatch(r"(-?)((?:\d+(?:\.\d+)?(?:h|m|s|ms|us|ns))+)", s)
            if m is None:
                raise ValueError("time: invalid duration %r" % v)
            units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
            secs = sum(float(n) * units[u] for n, u in
                       re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)", m.group(2)))
            if m.group(1):
                secs = -secs
    else:
        raise ValueError("keep_alive: not a duration")
    return None if secs < 0 else secs


class Model:
    """One local model, as /api/tags lists it."""

    def __init__(self, spec):
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ValueError("a model is a tag string or an object with a name")
        self.name = full_name(spec["name"])
        self.size = int(spec.get("size", 1 << 30))
        self.size_vram = int(spec.get("size_vram", self.size))
        self.digest = spec.get("digest") or hashlib.sha256(self.name.encode()).hexdigest()
        self.details = {
            "parent_model": "",
            "format": spec.get("format", "gguf"),
            "family": spec.get("family", "llama"),
            "families": [spec.get("family", "llama")],
            "parameter_size": spec.get("parameter_size", "1B"),
            "quantization_level": spec.get("quantization_level", "Q4_K_M"),
        }
        self.modified_at = now_iso()

    def tag(self):
        return {"name": self.name, "model": self.name, "modified_at": self.modified_at,
                "size": self.size, "digest": self.digest, "details": self.details}


class State:
    """The double's Ollama: local models and the loaded ones (name -> expiry or None)."""

    def __init__(self, models, fail_ps=False, garbage=False):
        self.models = {m.name: m for m in models}
        self.loaded = {}
        self.fail_ps = fail_ps
        self.garbage = garbage
        self.lock = threading.Lock()

    def find(self, name):
        return self.models.get(full_name(name)) if isinstance(name, str) else None

    def expire(self):
        t = time.time()
        for name in [n for n, exp in self.loaded.items() if exp is not None and exp <= t]:
            del self.loaded[name]

    def load(self, model, keep_alive):
        """Loads model for keep_alive seconds (None: forever); 0 unloads it."""
        with self.lock:
            if keep_alive == 0:
                self.loaded.pop(model.name, None)
            else:
                self.loaded[model.name] = (None if keep_alive is None
                                           else time.time() + keep_alive)

    def running(self):
        with self.lock:
            self.expire()
            out = []
            for name, exp in self.loaded.items():
                m = self.models[name]
                # a model kept forever gets a far expiry, as Ollama shows it
                at = now_iso(exp) if exp is not None else "2318-08-08T00:00:00Z"
                out.append({"name": m.name, "model": m.name, "size": m.size,
                            "digest": m.digest, "details": m.details, "expires_at": at,
                            "size_vram": m.size_vram})
            return out


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the methods named in ROUTES."""

    protocol_version = "HTTP/1.1"
    server_version = "ollama-double/" + VERSION
    state = None  # set by main

    ROUTES = {
        ("GET", "/"): "root",
        ("HEAD", "/"): "root",
        ("GET", "/api/version"): "version",
        ("GET", "/api/tags"): "tags",
        ("GET", "/api/ps"): "ps",
        ("POST", "/api/generate"): "generate",
        ("POST", "/api/chat"): "chat",
        ("POST", "/v1/chat/completions"): "v1_chat",
        ("POST", "/v1/completions"): "v1_completions",
        ("POST", "/v1/embeddings"): "v1_embeddings",
        ("GET", "/v1/models"): "v1_models",
    }

    # -- plumbing

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def send_body(self, status, body, ctype):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj):
        self.send_body(status, json.dumps(obj), "application/json; charset=utf-8")

    def send_error_json(self, status, message):
        if not self.path.startswith("/v1/"):
            self.send_json(status, {"error": message})
            return
        # the OpenAI shape, with Ollama's types (openai.NewError)
        etype = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        self.send_json(status, {"error": {"message": message, "type": etype,
                                          "param": None, "code": None}})

    def send_ndjson(self, objs):
        """A streamed answer: one JSON object a line, the connection closed after."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for o in objs:
            self.wfile.write((json.dumps(o) + "\n").encode())
            self.wfile.flush()

    def send_sse(self, objs):
        """An OpenAI stream: one server-sent event a chunk, then [DONE], then close."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for data in [json.dumps(o) for o in objs] + ["[DONE]"]:
            self.wfile.write(("data: %s\n\n" % data).encode())
            self.wfile.flush()

    def read_json(self):
        """The request body as a JSON object, or None after answering 400."""
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.send_error_json(400, "invalid Content-Length")
            return None
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError) as e:
            self.send_error_json(400, "invalid request body: %s" % e)
            return None
        if not isinstance(body, dict):
            self.send_error_json(400, "invalid request body: not an object")
            return None
        return body

    def dispatch(self):
        path = self.path.split("?", 1)[0]
        name = self.ROUTES.get((self.command, path))
        if name is None:
            if any(p == path for (_, p) in self.ROUTES):
                self.send_body(405, "405 method not allowed", "text/plain")
            else:
                self.send_body(404, "404 page not found", "text/plain")
            return
        if self.state.garbage and path.startswith("/api/"):
            if self.command == "POST":
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_body(200, "{\"models\": [oops, not json", "application/json")
            return
        getattr(self, "route_" + name)()

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    # -- routes

    def route_root(self):
        self.send_body(200, "Ollama is running", "text/plain; charset=utf-8")

    def route_version(self):
        self.send_json(200, {"version": VERSION})

    def route_tags(self):
        self.send_json(200, {"models": [m.tag() for m in self.state.models.values()]})

    def route_ps(self):
        if self.state.fail_ps:
            self.send_error_json(500, "the double was told to fail /api/ps")
            return
        self.send_json(200, {"models": self.state.running()})

    def route_generate(self):
        self.complete(chat=False)

    def route_chat(self):
        self.complete(chat=True)

    def complete(self, chat):
        """/api/generate and /api/chat: load, unload, or a canned answer."""
        body = self.read_json()
        if body is None:
            return
        name = body.get("model")
        if not isinstance(name, str) or not name:
            self.send_error_json(400, "model is required")
            return
        model = self.state.find(name)
        if model is None:
            self.send_error_json(404, "model \"%s\" not found, try pulling it first" % name)
            return
        try:
            keep_alive = parse_keep_alive(body.get("keep_alive"))
        except ValueError as e:
            self.send_error_json(400, str(e))
            return
        if chat:
            messages = body.get("messages")
            if messages is not None and not isinstance(messages, list):
                self.send_error_json(400, "messages must be a list")
                return
            empty = not messages
        else:
            prompt = body.get("prompt")
            empty = prompt is None or prompt == ""
        self.state.load(model, keep_alive)
        base = {"model": model.name, "created_at": now_iso()}
        if empty:
            reason = "unload" if keep_alive == 0 else "load"
            out = dict(base, done=True, done_reason=reason)
            if chat:
                out["message"] = {"role": "assistant", "content": ""}
            else:
                out["response"] = ""
            self.send_json(200, out)
            return
        self.answer(base, chat, body.get("stream", True) is not False)

    def answer(self, base, chat, stream):
        """The canned answer, whole or as a stream of one word a line."""
        stats = {"total_duration": 1500000, "load_duration": 100000,
                 "prompt_eval_count": 8, "prompt_eval_duration": 400000,
                 "eval_count": len(CANNED.split()), "eval_duration": 1000000}

        def part(text, done):
            o = dict(base, done=done)
            if chat:
                o["message"] = {"role": "assistant", "content": text}
            else:
                o["response"] = text
            return o

        if not stream:
            out = part(CANNED, True)
            out["done_reason"] = "stop"
            out.update(stats)
            if not chat:
                out["context"] = [1, 2, 3]
            self.send_json(200, out)
            return
        words = CANNED.split(" ")
        objs = [part(w if i == 0 else " " + w, False) for i, w in enumerate(words)]
        final = part("", True)
        final["done_reason"] = "stop"
        final.update(stats)
        objs.append(final)
        self.send_ndjson(objs)

    # -- the OpenAI-compatible routes

    def route_v1_chat(self):
        self.v1_complete(chat=True)

    def route_v1_completions(self):
        self.v1_complete(chat=False)

    def v1_model(self):
        """(body, model) of a /v1 request, or (None, None) after answering the error."""
        body = self.read_json()
        if body is None:
            return None, None
        name = body.get("model")
        if not isinstance(name, str) or not name:
            self.send_error_json(400, "model is required")
            return None, None
        model = self.state.find(name)
        if model is None:
            self.send_error_json(404, "model \"%s\" not found, try pulling it first" % name)
            return None, None
        self.state.load(model, DEFAULT_KEEP_ALIVE)
        return body, model

    def v1_complete(self, chat):
        """/v1/chat/completions and /v1/completions: the canned answer, OpenAI-style."""
        body, model = self.v1_model()
        if body is None:
            return
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 0):
            self.send_error_json(400, "max_tokens must be a non-negative integer")
            return
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list):
                self.send_error_json(400, "messages must be a list")
                return
            prompt = " ".join(m.get("content") for m in messages if isinstance(m, dict)
                              and isinstance(m.get("content"), str))
        else:
            prompt = body.get("prompt")
            prompt = prompt if isinstance(prompt, str) else ""
        words = CANNED.split(" ")
        reason = "stop"
        if max_tokens is not None and max_tokens < len(words):
            words, reason = words[:max_tokens], "length"
        base = {"id": ("chatcmpl-%d" if chat else "cmpl-%d") % random.randrange(1000),
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": model.name,
                "system_fingerprint": "fp_ollama"}
        stream = body.get("stream") is True

        def choice(text, finish):
            if not chat:
                return {"text": text, "index": 0, "finish_reason": finish}
            return {"index": 0, "delta" if stream else "message":
                    {"role": "assistant", "content": text}, "finish_reason": finish}

        if not stream:
            n = len(prompt.split())
            out = dict(base, choices=[choice(" ".join(words), reason)],
                       usage={"prompt_tokens": n, "completion_tokens": len(words),
                              "total_tokens": n + len(words)})
            self.send_json(200, out)
            return
        if chat:
            base["object"] = "chat.completion.chunk"
        chunks = [dict(base, choices=[choice(w if i == 0 else " " + w, None)])
                  for i, w in enumerate(words)]
        chunks.append(dict(base, choices=[choice("", reason)]))
        self.send_sse(chunks)

    def route_v1_embeddings(self):
        body, model = self.v1_model()
        if body is None:
            return
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if (not isinstance(inputs, list) or not inputs
                or not all(isinstance(t, str) for t in inputs)):
            self.send_error_json(400, "invalid input")
            return
        data = []
        for i, text in enumerate(inputs):
            digest = hashlib.sha256(text.encode()).digest()
            vec = [round(b / 127.5 - 1.0, 6) for b in digest[:8]]
            data.append({"object": "embedding", "embedding": vec, "index": i})
        n = sum(len(t.split()) for t in inputs)
        self.send_json(200, {"object": "list", "data": data, "model": model.name,
                             "usage": {"prompt_tokens": n, "total_tokens": n}})

    def route_v1_models(self):
        self.send_json(200, {"object": "list", "data": [
            {"id": m.name, "object": "model",
             "created": int(datetime.datetime.fromisoformat(m.modified_at).timestamp()),
             "owned_by": "library"}
            for m in self.state.models.values()]})


def load_models(path):
    if path is None:
        return [Model(m) for m in DEFAULT_MODELS]
    with open(path, encoding="utf-8") as f:
        specs = json.load(f)
    if not isinstance(specs, list):
        raise ValueError("%s: not a JSON list" % path)
    return [Model(s) for s in specs]


def main():
    ap = argparse.ArgumentParser(description="A protocol double of Ollama's HTTP API.")
    ap.add_argument("--port", type=int, default=11434)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--models")
    ap.add_argument("--fail-ps", action="store_true")
    ap.add_argument("--garbage", action="store_true")
    args = ap.parse_args()
    try:
        models = load_models(args.models)
    except (OSError, ValueError) as e:
        sys.stderr.write("ollama_double: %s\n" % e)
        return 2
    Handler.state = State(models, fail_ps=args.fail_ps, garbage=args.garbage)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    print("listening %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
