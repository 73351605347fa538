#!/usr/bin/env bash
# Measures the pressure ladder's reloads beside a cold load of the same model: the time
# from the decision to shrink (or grow) a model to its new child being ready, against a
# POST /load of the same model from nothing. mloffloadd runs real llama-server children;
# the GPU is the fake NVML library of the tests (the children run on the CPU, their
# -ngl / --n-cpu-moe show the plan). Prints one table. Run on demand:
# bash bench/pressure.sh. Not a test. See bench/README.md, section "Pressure ladder".
#
# Knobs (environment):
#   ROUNDS          load, shrink, grow, unload rounds per shape (5)
#   SHAPES          model shapes (`mloffload gen --list`), written with --random
#                   ("small-llama small-moe")
#   CTX             context size (512)
#   START_S         bound on each server start and each wait (120)
#   MLOFFLOAD_LLAMA_BIN  llama-server to use (default: the cached build's)
#   MLOFFLOAD_CACHE as in scripts/setup-llama.sh
set -euo pipefail

log() { printf 'pressure.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS="${ROUNDS:-5}"
SHAPES="${SHAPES:-small-llama small-moe}"
CTX="${CTX:-512}"
START_S="${START_S:-120}"
for v in ROUNDS CTX START_S; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be at least 1"
[ -n "$SHAPES" ] || die "SHAPES is empty"
need_tools curl python3 cmake ninja pgrep
need_llama

scratch_setup pressure
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. build (Release, in build-bench/, apart from build/) ---
bench_build_release mloffload mloffloadd fake_nvml
NVML="$BB/fake-nvml/libnvidia-ml.so"
[ -e "$NVML" ] || die "no $NVML after the build"

# --- 2. models, read once so that every load takes them from the page cache ---
DIR="$SCRATCH/models"
mkdir -p "$DIR/state"
export MLOFFLOAD_LLAMA_DIR="$LLAMA/llama.cpp"
for shape in $SHAPES; do
    "$MLO" gen "$shape" "$DIR/$shape.gguf" --seed 1 --random >/dev/null || die "cannot generate $shape"
done
N_FILES=$(find "$DIR" -maxdepth 1 -name '*.gguf' | wc -l)
cat "$DIR"/*.gguf >/dev/null

# --- 3. mloffloadd on the fake GPU, growing back one second after the memory returns ---
export FAKE_NVML_STATE="$SCRATCH/nvml.txt"
printf 'count 1\ngpu 0 name="Fake GPU" uuid=GPU-fake total=%d used=0 temp=40 util=0\n' \
    $((64 << 30)) >"$FAKE_NVML_STATE"
printf 'regrow_hold_s = 1\n' >"$SCRATCH/mloffloadd.conf"
start_mloffloadd --config "$SCRATCH/mloffloadd.conf" --nvml-lib "$NVML" --reserve 0 \
    --sample-ms 100

# --- 4. the rounds (the driver: HTTP, the SSE stream, the fake GPU's readings) ---
RESULTS="$SCRATCH/results.json"
python3 - "$DPORT" "$FAKE_NVML_STATE" "$ROUNDS" "$CTX" "$START_S" "$RESULTS" $SHAPES <<'EOF'
import http.client, json, sys, threading, time

port, nvml, rounds, ctx, start_s, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
shapes = sys.argv[7:]
events, cond = [], threading.Condition()

def sse():
    c = http.client.HTTPConnection("127.0.0.1", int(port))
    c.request("GET", "/events")
    r = c.getresponse()
    kind = None
    for raw in r:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind:
            with cond:
                events.append((time.monotonic(), kind, json.loads(line[6:])["data"]))
                cond.notify_all()

def wait_event(kind, model, since):
    end = time.monotonic() + start_s
    with cond:
        while time.monotonic() < end:
            for t, k, d in events:
                if t >= since and k == kind and d.get("model") == model:
                    return t, d
            cond.wait(0.5)
    sys.exit("no %s for %s within %d s" % (kind, model, start_s))

def req(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=start_s)
    c.request(method, path, json.dumps(body) if body else None,
              {"Content-Type": "application/json"})
    r = c.getresponse()
    j = json.loads(r.read() or b"null")
    if r.status != 200:
        sys.exit("%s %s: %d %s" % (method, path, r.status, j))
    return j

def gpu(total, used):
    with open(nvml + ".tmp", "w") as f:
        f.write('count 1\ngpu 0 name="Fake GPU" uuid=GPU-fake total=%d used=%d temp=40 '
                'util=0\n' % (total, used))
    import os
    os.replace(nvml + ".tmp", nvml)

threading.Thread(target=sse, daemon=True).start()
time.sleep(0.5)
res = []
for shape in shapes:
    gpu(64 << 30, 0)                        # a roomy GPU: the whole model's plan
    time.sleep(0.3)
    b = req("GET", "/vram/budget?model=%s&ctx=%d" % (shape, ctx))
    one = b["plan"]["devices"][0]["total_bytes"]
    total = one * 3 // 2
    for i in range(rounds):
        gpu(total, 0)
        time.sleep(0.3)                     # a reading of the empty GPU
        t0 = time.monotonic()
        j = req("POST", "/load", {"model": shape, "ctx": ctx})
        cold_wall = (time.monotonic() - t0) * 1000
        _, ld = wait_event("model.loaded", shape, t0)
        held, full = j["plan"]["device"]["total_bytes"], j["plan"]["gpu_layers"]
        game = total - held                 # another program takes the rest of the GPU
        t1 = time.monotonic()
        gpu(total, game + held)
        te, sh = wait_event("model.shrunk", shape, t1)
        gpu(total, game + sh["after"]["device_bytes"])   # the driver sees it smaller
        time.sleep(1.5)                     # settled, under pressure_low
        t2 = time.monotonic()
        gpu(total, sh["after"]["device_bytes"])          # the program ends
        tg, gr = wait_event("model.grown", shape, t2)
        req("POST", "/unload", {"model": shape})
        res.append({"shape": shape, "cold_wall_ms": cold_wall, "cold_load_ms": ld["load_ms"],
                    "shrink_ms": sh["decision_to_ready_ms"], "shrink_wall_ms": (te - t1) * 1000,
                    "grow_ms": gr["decision_to_ready_ms"], "grow_wall_ms": (tg - t2) * 1000,
                    "shrink_load_ms": sh["load_ms"], "grow_load_ms": gr["load_ms"],
                    "layers": "%d/%d -> %d/%d -> %d/%d" % (full, j["plan"]["n_cpu_moe"],
                        sh["after"]["gpu_layers"], sh["after"]["n_cpu_moe"],
                        gr["after"]["gpu_layers"], gr["after"]["n_cpu_moe"])})
        print("pressure.sh: %s #%d: cold %d ms, shrink %d ms, grow %d ms (layers/expert layers "
              "on the CPU: %s)" % (shape, i + 1, ld["load_ms"], sh["decision_to_ready_ms"],
                 gr["decision_to_ready_ms"], res[-1]["layers"]), file=sys.stderr)
json.dump(res, open(out, "w"))
EOF
for p in "${PIDS[@]}"; do stop_pid "$p" 30; done
PIDS=()
check_no_llamas "mloffloadd"

# --- 5. one table ---
echo
echo "Pressure ladder reloads against a cold load, $ROUNDS rounds per shape, ctx $CTX; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for shape in $SHAPES; do
    echo "  $shape: $(du -h --apparent-size "$DIR/$shape.gguf" | cut -f1), in the page cache"
done
echo
python3 - "$RESULTS" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
fmt = "%-12s %6s %8s %10s %10s %10s %10s %12s %10s  %s"
print(fmt % ("shape", "rounds", "cold ms", "shrink ms", "(new child)", "grow ms", "(new child)",
             "shrink wall", "grow wall", "gpu layers/n_cpu_moe"))
for shape in dict.fromkeys(r["shape"] for r in rows):
    v = [r for r in rows if r["shape"] == shape]
    m = lambda k: "%.0f" % median([r[k] for r in v])
    print(fmt % (shape, len(v), m("cold_load_ms"), m("shrink_ms"), m("shrink_load_ms"),
                 m("grow_ms"), m("grow_load_ms"), m("shrink_wall_ms"), m("grow_wall_ms"),
                 v[0]["layers"]))
print()
print("medians. cold: POST /load to ready (the child's start to ready, model.loaded's load_ms);")
print("shrink / grow: the ladder's decision to the new child ready (decision_to_ready_ms of")
print("model.shrunk / model.grown: the old child's exit, the re-plan, the new child's load);")
print("(new child): of that, the new child's start to ready (the event's load_ms);")
print("wall: from the fake GPU's new reading to the event (adds the sampling, the 1 s tick,")
print("and for a grow the 1 s regrow_hold_s and the 1 s settle after the shrink).")
EOF
if [ "$LEFTOVERS" != 0 ]; then
    die "some llama-server processes of this run outlived their server (see above)"
fi
