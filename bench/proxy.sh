#!/usr/bin/env bash
# Measures what mloffloadd's OpenAI-compatible /v1 proxy costs, against the very llama-server
# child it runs (called directly on its port) as the anchor, and its on-demand switching
# against llama-server's router mode. Prints one table. Run on demand: bash bench/proxy.sh.
# Not a test. See bench/README.md, section "/v1 proxy".
#
#   1. latency   N sequential chat completions (max_tokens 1), direct and via the daemon
#                alternately, one keep-alive connection each: p50, p99, added ms, ratio;
#                then the same for OpenAI's Responses (/v1/responses) and Anthropic's
#                Messages (/v1/messages) routes.
#   2. stream    STREAM_ROUNDS streamed chat completions (STREAM_TOKENS tokens, ignore_eos)
#                each way, alternately: time to first chunk, gaps between chunks.
#   3. wrk       req/s at CONNS connections, DURATION s per run, direct and via the daemon
#                (WRK_ROUNDS rounds, the order turning each round).
#   4. mix       three tiny models a, b, c on a fake GPU that holds one; MIX_N requests
#                a, b, c, a, ... from MIX_THREADS threads: mloffloadd against the router
#                (llama-server --models-dir --models-max 1). Wall time and loads.
#
# Knobs (environment):
#   BUILD           build folder with mloffload, mloffloadd (and fake-nvml/) (build-bench,
#                   configured Release when new); ninja runs there first, so the binaries
#                   match the tree
#   N               timed requests per path in step 1 (300)
#   WARMUP          untimed requests per path before them (20)
#   CTX             context of the child of steps 1-3 (POST /load) (1024)
#   STREAM_ROUNDS   timed streams per path in step 2 (10)
#   STREAM_TOKENS   max_tokens of each stream (200)
#   CONNS           wrk connections in step 3 (32)
#   THREADS         wrk threads (2)
#   DURATION        seconds of each measured wrk run (10)
#   WRK_WARMUP      seconds of an unmeasured wrk run before each measured one (1; 0: none)
#   WRK_ROUNDS      measured wrk runs per path (2)
#   MIX_N           requests of step 4 (60)
#   MIX_THREADS     client threads of step 4 (6)
#   MIX_TOKENS      max_tokens of step 4's requests (4)
#   MIX_ROUNDS      runs of step 4 per system, the order turning each round (2)
#   MATCHED         1: step 4 also runs a router given mloffloadd's child arguments (1)
#   START_S         bound on each server start and on each request (120)
#   LATENCY_ONLY    1: step 1 only, and its rows of the table (0)
#   ROUTES          the routes of step 1 ("chat responses messages"; with LATENCY_ONLY=1 any
#                   of them, e.g. "chat" against a build without the others)
#   MLOFFLOAD_LLAMA_BIN  llama-server to use (default: the cached build's)
#   MLOFFLOAD_CACHE as in scripts/setup-llama.sh
set -euo pipefail

log() { printf 'proxy.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD="${BUILD:-$BB}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
N="${N:-300}"
WARMUP="${WARMUP:-20}"
CTX="${CTX:-1024}"
STREAM_ROUNDS="${STREAM_ROUNDS:-10}"
STREAM_TOKENS="${STREAM_TOKENS:-200}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
DURATION="${DURATION:-10}"
WRK_WARMUP="${WRK_WARMUP:-1}"
WRK_ROUNDS="${WRK_ROUNDS:-2}"
MIX_N="${MIX_N:-60}"
MIX_THREADS="${MIX_THREADS:-6}"
MIX_TOKENS="${MIX_TOKENS:-4}"
MIX_ROUNDS="${MIX_ROUNDS:-2}"
MATCHED="${MATCHED:-1}"
START_S="${START_S:-120}"
LATENCY_ONLY="${LATENCY_ONLY:-0}"
ROUTES="${ROUTES:-chat responses messages}"
for r in $ROUTES; do
    case "$r" in chat | responses | messages) ;; *) die "ROUTES: unknown route '$r'" ;; esac
done
[ "$LATENCY_ONLY" = 1 ] || [ "$ROUTES" = "chat responses messages" ] ||
    die "ROUTES other than the three needs LATENCY_ONLY=1"

for v in N WARMUP CTX STREAM_ROUNDS STREAM_TOKENS CONNS THREADS DURATION WRK_WARMUP WRK_ROUNDS \
    MIX_N MIX_THREADS MIX_TOKENS MIX_ROUNDS MATCHED START_S LATENCY_ONLY; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
for v in N STREAM_ROUNDS STREAM_TOKENS CONNS THREADS DURATION WRK_ROUNDS MIX_N MIX_THREADS \
    MIX_TOKENS MIX_ROUNDS START_S; do
    [ "${!v}" -ge 1 ] || die "$v must be at least 1"
done
[ "$THREADS" -le "$CONNS" ] || die "THREADS ($THREADS) must not exceed CONNS ($CONNS)"
[ "$MIX_THREADS" -le "$MIX_N" ] || die "MIX_THREADS ($MIX_THREADS) must not exceed MIX_N ($MIX_N)"
need_tools wrk curl python3 ninja pgrep cc
[ -x "$LLAMA_BIN" ] || die "no llama-server at $LLAMA_BIN: run scripts/setup-llama.sh or set MLOFFLOAD_LLAMA_BIN"
[ -d "$LLAMA/llama.cpp/models" ] || die "no llama.cpp tree at $LLAMA/llama.cpp (vocab files): run scripts/setup-llama.sh"
if [ ! -f "$BUILD/build.ninja" ]; then
    BUILD_DIR="$BUILD" BUILD_TYPE=Release bash "$ROOT/scripts/build.sh" >/dev/null 2>&1 ||
        die "cannot configure a build in $BUILD (scripts/build.sh)"
fi
HERE="$ROOT/bench"

# --- processes and the scratch folder: everything started here is stopped on exit ---
scratch_setup proxy

# GET or POST (with a body) URL, bounded; prints the body, fails on a status other than 200.
# The child's own key (PROXY_CHILD_KEY, once known) goes along: the child wants it, the
# daemon without keys of its own ignores it.
auth() { printf 'Authorization: Bearer %s' "${PROXY_CHILD_KEY:-none}"; }
get() { curl -sf -m "$START_S" -H "$(auth)" "$1"; }
post() { curl -sf -m "$START_S" -H "$(auth)" -H 'Content-Type: application/json' -X POST "$1" -d "$2"; }

# --- 1. the build: brought up to date with ninja, in BUILD ---
bench_build
bench_fake_nvml
log "binaries: $MLOD ($BUILD_TYPE), fake NVML $FAKE_NVML"

# --- 2. models: tiny (steps 1-3), and a, b, c: tiny with seeds 1, 2, 3 (step 4) ---
export MLOFFLOAD_LLAMA_DIR="$LLAMA/llama.cpp"
ONE="$SCRATCH/one"
THREE="$SCRATCH/three"
mkdir -p "$ONE/state" "$THREE/state"
"$MLO" gen tiny "$ONE/tiny.gguf" >/dev/null || die "cannot generate tiny"
for s in 1 2 3; do
    m=$(echo a b c | cut -d' ' -f"$s")
    "$MLO" gen tiny "$THREE/$m.gguf" --seed "$s" >/dev/null || die "cannot generate $m"
done
cat "$ONE"/*.gguf "$THREE"/*.gguf >/dev/null # in the page cache before anyone loads them
log "models: tiny.gguf, a.gguf, b.gguf, c.gguf ($(du -h --apparent-size "$ONE/tiny.gguf" | cut -f1) each)"

# Starts mloffloadd on DIR (its port in the variable named by $1); the rest: extra flags.
start_daemon() {
    local var="$1" dir="$2" logf="$2/mloffloadd.log" pid port=
    shift 2
    "$MLOD" --listen 127.0.0.1:0 --models-dir "$dir" --state-dir "$dir/state" \
        --llama-server "$LLAMA_BIN" --ollama-url '' --llama-url http://127.0.0.1:9 \
        --rescan 0 --idle-ttl 0 "$@" >"$logf" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    daemon_port() {
        port=$(log_port "$logf")
        [ -n "$port" ]
    }
    local n_files
    n_files=$(find "$dir" -maxdepth 1 -name '*.gguf' | wc -l)
    daemon_ready() { [ "$(get "http://127.0.0.1:$port/v1/models" 2>/dev/null |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]))' 2>/dev/null)" = "$n_files" ]; }
    if ! wait_for "mloffloadd" "$pid" daemon_port || ! wait_for "mloffloadd" "$pid" daemon_ready; then
        tail -n 20 "$logf" >&2
        die "mloffloadd on $dir did not start or did not list its $n_files models"
    fi
    printf -v "$var" '%s' "$port"
    log "mloffloadd (pid $pid) on port $port lists $n_files models in $dir"
}

# ============ steps 1-3: one model, one child, called directly and through the daemon ============
DPORT='' MPORT='' # the two daemons' ports, set by start_daemon
start_daemon DPORT "$ONE"
D1PID=${PIDS[-1]}
LOADS0=$(metric "$DPORT" mloffload_model_loads_total)
LOADED=$(post "http://127.0.0.1:$DPORT/load" "{\"model\":\"tiny\",\"ctx\":$CTX}") ||
    die "mloffloadd: POST /load tiny failed"
[ "$(echo "$LOADED" | json state)" = ready ] || die "mloffloadd: POST /load answered $LOADED"
CPORT=$(get "http://127.0.0.1:$DPORT/status" | python3 -c '
import json, sys
print(next(m["port"] for m in json.load(sys.stdin)["loaded"] if m["model"] == "tiny"))')
[ "$CPORT" = "$(echo "$LOADED" | json port)" ] || die "/status and /load disagree on the child's port"
CHILD_ARGS=$(echo "$LOADED" | json plan.args)
# mloffloadd gives each child a random API key, in its environment (LLAMA_API_KEY)
PROXY_CHILD_KEY=$(tr '\0' '\n' <"/proc/$(echo "$LOADED" | json pid)/environ" | sed -n 's/^LLAMA_API_KEY=//p')
export PROXY_CHILD_KEY
log "the child: llama-server on port $CPORT (pid $(echo "$LOADED" | json pid)), args $CHILD_ARGS"

log "step 1: $N sequential chat completions each way (after $WARMUP untimed), alternating"
# the daemon's CPU time in ns, all its threads (schedstat: finer than the clock ticks of stat)
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
: >"$SCRATCH/cpu.tsv"  # route, daemon CPU ns over the route's run, requests through it
for route in $ROUTES; do
    log "step 1: $N sequential $route requests each way (after $WARMUP untimed), alternating"
    suffix=""
    [ "$route" = chat ] || suffix="-$route"
    c0=$(cpu_ns "$D1PID")
    python3 "$HERE/proxy.py" latency "$CPORT" "$DPORT" tiny "$N" "$WARMUP" "$route" \
        >"$SCRATCH/latency$suffix.json"
    printf '%s\t%s\t%s\n' "$route" "$(($(cpu_ns "$D1PID") - c0))" "$((N + WARMUP))" >>"$SCRATCH/cpu.tsv"
done

if [ "$LATENCY_ONLY" = 1 ]; then
    echo
    echo "/v1 proxy, step 1 only: mloffloadd against its own llama-server child; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs"
    echo "mloffloadd $COMMIT, $BUILD_TYPE build; llama-server of node-llama-cpp $NLC_VERSION; load at the start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
    python3 "$HERE/proxy.py" table "$SCRATCH" "$N"
    exit 0
fi
log "step 2: $STREAM_ROUNDS streams of $STREAM_TOKENS tokens each way, alternating"
python3 "$HERE/proxy.py" stream "$CPORT" "$DPORT" tiny "$STREAM_ROUNDS" "$STREAM_TOKENS" >"$SCRATCH/stream.json"

# When wrk stops, its connections close with requests still open: waiting in the daemon's
# queue, or running in the child. Both should drop them (the daemon sees the hang-up and
# cancels). After every wrk run, the requests the daemon still holds (waiting + in
# flight) go to LEFT (0 when it dropped them at once), and the next run waits until the
# daemon holds none and no slot of the child is busy, so that no run inherits another's
# work.
busy_slots() {
    get "http://127.0.0.1:$CPORT/slots" | python3 -c 'import json, sys; print(sum(1 for s in json.load(sys.stdin) if s.get("is_processing")))'
}
# CPU time (user + system) a process has used, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
DCPU_TICKS=0 DCPU_REQS=0  # mloffloadd's CPU time during the measured wrk runs through it
held() { echo $(($(metric "$DPORT" mloffload_v1_waiting) + $(metric "$DPORT" mloffload_v1_in_flight))); }
settle() {
    local what="$1" end=$((SECONDS + START_S)) t0 t1
    t0=$(date +%s%N)
    LEFT=$(held)
    until [ "$(held)" = 0 ] && [ "$(busy_slots)" = 0 ]; do
        [ "$SECONDS" -lt "$end" ] || die "$what: the daemon or the child still busy after ${START_S}s"
        sleep 0.05
    done
    t1=$(date +%s%N)
    SETTLE_MS=$(((t1 - t0) / 1000000))
}
# One measured wrk run against PORT (after a warm-up run); appends a line to wrk.tsv:
# round target rps p50_ms p99_ms requests errors left_in_daemon settle_ms statuses
wrk_run() {
    local round="$1" target="$2" port="$3" url out
    url="http://127.0.0.1:$port/v1/chat/completions"
    if [ "$WRK_WARMUP" -gt 0 ]; then
        PROXY_MODEL=tiny wrk -t"$THREADS" -c"$CONNS" -d"${WRK_WARMUP}s" --timeout 10s \
            -s "$HERE/proxy.lua" "$url" >/dev/null
        settle "wrk warm-up"
    fi
    out="$SCRATCH/wrk-$round-$target.txt"
    log "step 3: wrk $target, round $round: $CONNS connections, $THREADS threads, ${DURATION}s"
    local t0 r0
    t0=$(cpu_ticks "$D1PID")
    r0=$(metric "$DPORT" mloffload_v1_requests_total)
    PROXY_MODEL=tiny wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency \
        -s "$HERE/proxy.lua" "$url" >"$out"
    settle "wrk $target"
    if [ "$target" = daemon ]; then
        DCPU_TICKS=$((DCPU_TICKS + $(cpu_ticks "$D1PID") - t0))
        DCPU_REQS=$((DCPU_REQS + $(metric "$DPORT" mloffload_v1_requests_total) - r0))
    fi
    [ "$target" = daemon ] || LEFT=-
    log "  $(grep -E '^(Requests/sec|statuses|first error)' "$out" | tr '\n' ' ')left in the daemon: $LEFT, settled in $SETTLE_MS ms"
    awk -v round="$round" -v target="$target" -v left="$LEFT" -v settle="$SETTLE_MS" '
        function ms(s,   v) {
            v = s + 0
            if (s ~ /us$/) return v / 1000
            if (s ~ /ms$/) return v
            if (s ~ /m$/) return v * 60000
            if (s ~ /s$/) return v * 1000
            return v
        }
        /Latency Distribution/ { dist = 1; next }
        dist && $1 == "50%" { p50 = ms($2) }
        dist && $1 == "99%" { p99 = ms($2); dist = 0 }
        / requests in / { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) err += $i + 0 }
        /Non-2xx or 3xx responses:/ { err += $NF }
        /^statuses:/ { st = $0; sub(/^statuses: */, "", st) }
        END {
            if (rps == "" || p99 == "") { print "cannot parse wrk output" > "/dev/stderr"; exit 1 }
            printf "%s\t%s\t%.1f\t%.3f\t%.3f\t%d\t%d\t%s\t%d\t%s\n", round, target, rps, p50, p99, n, err + 0, left, settle, st
        }' "$out" >>"$SCRATCH/wrk.tsv" || { cat "$out" >&2; die "cannot parse $out"; }
}
: >"$SCRATCH/wrk.tsv"
for ((r = 1; r <= WRK_ROUNDS; r++)); do
    if ((r % 2)); then
        wrk_run "$r" direct "$CPORT"; wrk_run "$r" daemon "$DPORT"
    else
        wrk_run "$r" daemon "$DPORT"; wrk_run "$r" direct "$CPORT"
    fi
done
LOADS1=$(metric "$DPORT" mloffload_model_loads_total)
V1_REQ=$(metric "$DPORT" mloffload_v1_requests_total)
V1_ERR=$(metric "$DPORT" mloffload_v1_upstream_errors_total)
[ "$CPORT" = "$(get "http://127.0.0.1:$DPORT/status" | python3 -c '
import json, sys
print(next(m["port"] for m in json.load(sys.stdin)["loaded"] if m["model"] == "tiny"))')" ] ||
    die "the child changed during steps 1-3: the anchor is not the daemon's child any more"
log "steps 1-3 done: $((LOADS1 - LOADS0)) load(s) of tiny, $V1_REQ /v1 requests, $V1_ERR upstream errors"
stop_pid "${PIDS[-1]}" 30
unset 'PIDS[-1]'

# ============ step 4: three models on a GPU that holds one, mloffloadd against the router ============
NVML_STATE="$SCRATCH/nvml.txt"
set_gpu() {
    printf 'count 1\ngpu 0 name="Fake" uuid=GPU-b total=%s used=0 temp=40 util=0\n' "$1" >"$NVML_STATE.tmp"
    mv "$NVML_STATE.tmp" "$NVML_STATE"
}
set_gpu $((1 << 30))
export FAKE_NVML_STATE="$NVML_STATE"
start_daemon MPORT "$THREE" --nvml-lib "$FAKE_NVML" --reserve 0 --sample-ms 100
unset FAKE_NVML_STATE
# the fake GPU sized to 1.5 times what one of the models needs on it: one fits, two do not
ONE_BYTES=$(get "http://127.0.0.1:$MPORT/vram/budget?model=a" | json plan.devices.0.total_bytes)
[ "$ONE_BYTES" -gt 1000000 ] || die "the plan of a on the fake GPU is $ONE_BYTES bytes"
GPU_BYTES=$((ONE_BYTES * 3 / 2))
set_gpu "$GPU_BYTES"
gpu_sized() { [ "$(get "http://127.0.0.1:$MPORT/vram" | json devices.0.total_bytes 2>/dev/null)" = "$GPU_BYTES" ]; }
wait_for "mloffloadd" "${PIDS[-1]}" gpu_sized || die "mloffloadd does not see the fake GPU's new size"
BUDGET=$(get "http://127.0.0.1:$MPORT/vram/budget?model=a")
MIX_ARGS=$(echo "$BUDGET" | json plan.args)
MIX_CTX=$(echo "$BUDGET" | json ctx)
[ "$(echo "$BUDGET" | json fits)" = True ] || die "a does not fit the fake GPU: $BUDGET"
log "fake GPU: $GPU_BYTES bytes (1.5 x a's $ONE_BYTES); mloffloadd's child args for a: $MIX_ARGS"

# llama-server in router mode on the same three files, at most one model loaded
ROUTERS=()  # "label|port"
start_router() {
    local label="$1" port pid
    shift
    port=$(free_port)
    "$LLAMA_BIN" --models-dir "$THREE" --models-max 1 --port "$port" --host 127.0.0.1 "$@" \
        >"$SCRATCH/router-$port.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    router_ready() { [ "$(get "http://127.0.0.1:$port/models" 2>/dev/null | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]))' 2>/dev/null)" = 3 ]; }
    if ! wait_for "router" "$pid" router_ready; then
        tail -n 20 "$SCRATCH/router-$port.log" >&2
        die "the router did not list the 3 models"
    fi
    log "$label (pid $pid, port $port, default args: $*) lists 3 models"
    ROUTERS+=("$label|$port")
}
start_router "router -c $MIX_CTX" -c "$MIX_CTX"
if [ "$MATCHED" = 1 ]; then
    read -ra margs <<<"$MIX_ARGS"
    start_router "router, mloffloadd's child args" "${margs[@]}"
fi

# Nothing loaded in any system before a run, so each starts cold.
unload_all() {
    local m
    for m in $(get "http://127.0.0.1:$MPORT/status" | python3 -c 'import json, sys; print(" ".join(m["model"] for m in json.load(sys.stdin)["loaded"]))'); do
        post "http://127.0.0.1:$MPORT/unload" "{\"model\":\"$m\"}" >/dev/null || die "mloffloadd: POST /unload $m failed"
    done
    local r
    for r in "${ROUTERS[@]}"; do
        for m in $(get "http://127.0.0.1:${r#*|}/models" | python3 -c 'import json, sys; print(" ".join(m["id"] for m in json.load(sys.stdin)["data"] if m["status"]["value"] != "unloaded"))'); do
            post "http://127.0.0.1:${r#*|}/models/unload" "{\"model\":\"$m\"}" >/dev/null || die "${r%|*}: POST /models/unload $m failed"
        done
        local i
        for ((i = 0; i < 100; i++)); do
            [ -z "$(get "http://127.0.0.1:${r#*|}/models" | python3 -c 'import json, sys; print(" ".join(m["id"] for m in json.load(sys.stdin)["data"] if m["status"]["value"] != "unloaded"))')" ] && break
            sleep 0.1
        done
    done
}
router_loads() { grep -c 'load: spawning server instance with name=' "$SCRATCH/router-$1.log" || true; }

: >"$SCRATCH/mix.tsv"  # round system wall_s ok errors loads p50_ms max_ms
mix_run() {
    local round="$1" label="$2" port="$3" kind="$4" before after out
    unload_all
    if [ "$kind" = mlo ]; then before=$(metric "$port" mloffload_model_loads_total); else before=$(router_loads "$port"); fi
    log "step 4: $label, round $round: $MIX_N requests a, b, c, ... from $MIX_THREADS threads"
    out=$(python3 "$HERE/proxy.py" mix "$port" a,b,c "$MIX_N" "$MIX_THREADS" "$MIX_TOKENS")
    if [ "$kind" = mlo ]; then after=$(metric "$port" mloffload_model_loads_total); else after=$(router_loads "$port"); fi
    echo "$out" | python3 -c '
import json, sys
j = json.load(sys.stdin)
l = j["latency"] or {"p50": 0, "max": 0}
print("\t".join(map(str, [sys.argv[1], sys.argv[2], "%.3f" % j["wall_s"], j["ok"], j["errors"],
      int(sys.argv[4]) - int(sys.argv[3]), "%.1f" % l["p50"], "%.1f" % l["max"]])))
for e in j["error_samples"]:
    print("proxy.sh: %s: %s" % (sys.argv[2], e), file=sys.stderr)' "$round" "$label" "$before" "$after" >>"$SCRATCH/mix.tsv"
    log "  $(tail -n 1 "$SCRATCH/mix.tsv" | cut -f3-)"
}
SYSTEMS=("mloffloadd|$MPORT|mlo")
for r in "${ROUTERS[@]}"; do SYSTEMS+=("$r|router"); done
for ((r = 1; r <= MIX_ROUNDS; r++)); do
    n=${#SYSTEMS[@]}
    for ((k = 0; k < n; k++)); do
        s=${SYSTEMS[$(((r - 1 + k) % n))]}
        IFS='|' read -r label port kind <<<"$s"
        mix_run "$r" "$label" "$port" "$kind"
    done
done
for p in "${PIDS[@]}"; do stop_pid "$p" 30; done
PIDS=()
check_no_llamas "the servers"

# --- the table ---
echo
echo "/v1 proxy: mloffloadd against its own llama-server child; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "mloffloadd $COMMIT, $BUILD_TYPE build in ${BUILD#"$ROOT"/}; llama-server of node-llama-cpp $NLC_VERSION"
echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Steps 1-3: model tiny (2 layers, F32), child args $CHILD_ARGS (-lv 4); $((LOADS1 - LOADS0)) load(s), $V1_REQ /v1 requests, $V1_ERR upstream errors"
echo "Step 4: a, b, c (tiny, seeds 1-3), fake GPU of $GPU_BYTES bytes (1.5 x a's plan, $ONE_BYTES); mloffloadd's child args $MIX_ARGS"
echo
python3 - "$SCRATCH" "$N" "$STREAM_ROUNDS" "$STREAM_TOKENS" "$CONNS" "$DURATION" "$MIX_N" "$MIX_THREADS" "$MIX_TOKENS" \
    "$DCPU_TICKS" "$DCPU_REQS" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
d, n, rounds, tokens, conns, dur, mix_n, mix_t, mix_tok, cpu_ticks, cpu_reqs, hz = sys.argv[1:]
lat = json.load(open(d + "/latency.json"))
st = json.load(open(d + "/stream.json"))
fmt = "%-44s %12s %12s %9s %7s"
print(fmt % ("measure", "direct", "via daemon", "added", "ratio"))
def row(name, a, b, digits=3):
    print(fmt % (name, "%.*f" % (digits, a), "%.*f" % (digits, b), "%+.*f" % (digits, b - a),
                 "%.2f" % (b / a) if a else "-"))
row("chat, max_tokens 1, p50 ms (%s each)" % n, lat["direct"]["p50"], lat["daemon"]["p50"])
row("chat, max_tokens 1, p99 ms", lat["direct"]["p99"], lat["daemon"]["p99"])
row("chat, max_tokens 1, mean ms", lat["direct"]["mean"], lat["daemon"]["mean"])
for route in ("responses", "messages"):
    lr = json.load(open(d + "/latency-" + route + ".json"))
    row("%s, 1 token, p50 ms" % route, lr["direct"]["p50"], lr["daemon"]["p50"])
    row("%s, 1 token, p99 ms" % route, lr["direct"]["p99"], lr["daemon"]["p99"])
D, M = st["direct"], st["daemon"]
row("stream: first chunk p50 ms (%s each)" % rounds, D["ttfc"]["p50"], M["ttfc"]["p50"])
row("stream: gap between chunks p50 ms", D["gap"]["p50"], M["gap"]["p50"])
row("stream: gap between chunks mean ms", D["gap"]["mean"], M["gap"]["mean"])
row("stream: gap between chunks p99 ms", D["gap"]["p99"], M["gap"]["p99"])
row("stream: last chunk p50 ms (%s tokens)" % tokens, D["total"]["p50"], M["total"]["p50"])
w = {}
left = []
for line in open(d + "/wrk.tsv"):
    rnd, target, rps, p50, p99, reqs, err, lft, settle, statuses = line.rstrip("\n").split("\t")
    w.setdefault(target, []).append((float(rps), float(p50), float(p99), int(reqs), int(err), statuses))
    if target == "daemon":
        left.append("%s (%.1f s)" % (lft, int(settle) / 1000))
for i in range(len(w["direct"])):
    row("wrk %s conns, round %d: req/s" % (conns, i + 1), w["direct"][i][0], w["daemon"][i][0], 1)
    row("wrk %s conns, round %d: p99 ms" % (conns, i + 1), w["direct"][i][2], w["daemon"][i][2], 1)
def rps_all(v):  # all requests over all measured time (each run's time: requests / req/s)
    return sum(x[3] for x in v) / sum(x[3] / x[0] for x in v)
row("wrk %s conns, all rounds: req/s" % conns, rps_all(w["direct"]), rps_all(w["daemon"]), 1)
print()
print("step 1: connections opened: direct %d, via daemon %d; answers the same both ways: %s"
      % (lat["connects"]["direct"], lat["connects"]["daemon"], lat["same_answer"]))
print("        mloffloadd's CPU time per request through it (relaying the child's log for both paths): " +
      ", ".join("%s %.0f us" % (r, int(ns) / 1000 / int(q)) for r, ns, q in
                (l.split() for l in open(d + "/cpu.tsv"))))
print("step 2: SSE events per stream: direct %s, via daemon %s; events within 0.05 ms of the one before"
      % (D["events"], M["events"]))
print("        (came in together): direct %d, via daemon %d, of %d gaps each; the same text both ways: %s"
      % (D["same_read"], M["same_read"], D["gap"]["n"], st["same_text"]))
print("step 3: wrk errors (socket errors and non-2xx): direct %d, via daemon %d; statuses: direct %s, via daemon %s"
      % (sum(x[4] for x in w["direct"]), sum(x[4] for x in w["daemon"]),
         " / ".join(x[5] for x in w["direct"]), " / ".join(x[5] for x in w["daemon"])))
print("        requests the daemon still held when wrk stopped (and the time until it and the child were idle):")
print("        " + ", ".join(left))
if int(cpu_reqs) > 0:
    print("        mloffloadd's own CPU time (user + system) in its measured runs: %.0f us per request (%.2f s, %s requests)"
          % (int(cpu_ticks) / int(hz) * 1e6 / int(cpu_reqs), int(cpu_ticks) / int(hz), cpu_reqs))
print()
mix = {}
order = []
for line in open(d + "/mix.tsv"):
    rnd, system, wall, ok, err, loads, p50, mx = line.rstrip("\n").split("\t")
    if system not in mix:
        order.append(system)
    mix.setdefault(system, []).append((float(wall), int(ok), int(err), int(loads), float(p50), float(mx)))
fmt = "%-34s %5s %8s %6s %6s %6s %9s %9s %7s"
print("Step 4: %s requests a, b, c, a, ... from %s threads, max_tokens %s, one model resident at a time"
      % (mix_n, mix_t, mix_tok))
print(fmt % ("system", "round", "wall s", "ok", "errors", "loads", "p50 ms", "max ms", "ratio"))
base = mix["mloffloadd"]
for system in order:
    for i, (wall, ok, err, loads, p50, mx) in enumerate(mix[system]):
        ratio = "%.2f" % (base[i][0] / wall) if system != "mloffloadd" else "-"
        print(fmt % (system, i + 1, "%.2f" % wall, ok, err, loads, "%.1f" % p50, "%.1f" % mx, ratio))
print()
print("added: via daemon minus direct; ratio: via daemon over direct (steps 1-3); step 4's ratio:")
print("mloffloadd's wall time over the router row's in the same round (below 1: mloffloadd faster).")
print("loads: children started during the run (mloffloadd: mloffload_model_loads_total; router:")
print("'spawning server instance' lines in its log).")
EOF
if [ "$LEFTOVERS" != 0 ]; then
    die "some llama-server processes of this run outlived their server (see above)"
fi
