#!/usr/bin/env bash
# Measures whether GET /vram/budget keeps mloffloadd's event loop free: /vram/budget at
# CONNS connections (wrk) with, at the same time, GET /health on one more connection,
# whose latency is what every other client of the daemon sees meanwhile; the same with
# GET /status (answered from memory) in place of /vram/budget as the anchor. Prints one
# table with the ratios to the anchor. The model is a real-shape qwen2-7b header (151k-
# token vocabulary, the slowest header to parse); the daemon has no GPU (the plan is the
# CPU's; the parse and the estimate, the costly part, are the same). Run on demand:
# bash bench/budget.sh. Not a test. See bench/README.md, section "/vram/budget and the loop".
#
# Knobs (environment):
#   BUILD        build folder with mloffload and mloffloadd (build-bench, configured
#                Release when new); ninja runs there first, so the binaries match the tree
#   BASE_BUILD   another build folder whose mloffloadd is measured the same way first
#                (e.g. one of the commit before a change); empty: none
#   CONNS        wrk connections on the measured route (64)
#   THREADS      wrk threads on the measured route (2)
#   DURATION     seconds of each measured run (10)
#   WARMUP       seconds of an unmeasured run of the route before each measured one (1)
#   SHAPE        the model's shape for mloffload gen (qwen2-7b)
#   START_S      bound on the daemon's start (60)
#   MLOFFLOAD_CACHE as in scripts/setup-llama.sh
set -euo pipefail

log() { printf 'budget.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD="${BUILD:-$BB}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BASE_BUILD="${BASE_BUILD:-}"
CONNS="${CONNS:-64}"
THREADS="${THREADS:-2}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-1}"
SHAPE="${SHAPE:-qwen2-7b}"
START_S="${START_S:-60}"
for v in CONNS THREADS DURATION WARMUP START_S; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
[ "$DURATION" -ge 1 ] || die "DURATION must be at least 1"
[ "$THREADS" -ge 1 ] && [ "$THREADS" -le "$CONNS" ] || die "THREADS must be 1..CONNS"
need_tools wrk curl python3 ninja
[ -d "$LLAMA/llama.cpp/models" ] || die "no llama.cpp tree at $LLAMA/llama.cpp (vocab files): run scripts/setup-llama.sh"
if [ ! -f "$BUILD/build.ninja" ]; then
    BUILD_DIR="$BUILD" BUILD_TYPE=Release bash "$ROOT/scripts/build.sh" >/dev/null 2>&1 ||
        die "cannot configure a build in $BUILD (scripts/build.sh)"
fi
if [ -n "$BASE_BUILD" ]; then
    [ -x "$BASE_BUILD/mloffloadd" ] || die "no mloffloadd in BASE_BUILD $BASE_BUILD"
fi

scratch_setup budget
get() { curl -sf -m 30 "$1"; }

# --- 1. the build and the model ---
bench_build
export MLOFFLOAD_LLAMA_DIR="$LLAMA/llama.cpp"
mkdir -p "$SCRATCH/models"
"$MLO" gen "$SHAPE" "$SCRATCH/models/$SHAPE.gguf" >/dev/null || die "cannot generate $SHAPE"
log "model: $SHAPE, header $(du -h --apparent-size "$SCRATCH/models/$SHAPE.gguf" | cut -f1) apparent"

RESULTS="$SCRATCH/results.tsv"
: >"$RESULTS"

# wrk's figures of a --latency run: "rps p50_ms p99_ms errors".
wrk_figures() {
    awk '
        function ms(s,   v) {
            v = s + 0
            if (s ~ /us$/) return v / 1000
            if (s ~ /ms$/) return v
            if (s ~ /s$/) return v * 1000
            return v
        }
        /Latency Distribution/ { dist = 1; next }
        dist && $1 == "50%" { p50 = ms($2) }
        dist && $1 == "99%" { p99 = ms($2); dist = 0 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) err += $i + 0 }
        /Non-2xx or 3xx responses:/ { err += $NF }
        END { if (rps == "" || p99 == "") exit 1; printf "%.1f %.3f %.3f %d\n", rps, p50, p99, err + 0 }' "$1"
}

# measure DAEMON ROUTE URL PORT PID: the route at CONNS connections and /health on one
# connection at the same time; appends "daemon route rps p50 p99 err h_rps h_p50 h_p99".
measure() {
    local who="$1" route="$2" url="$3" port="$4" pid="$5" out="$SCRATCH/wrk-$1-${2//[\/?=&]/_}"
    get "$url" >/dev/null || die "$who $route: request failed"
    [ "$WARMUP" -gt 0 ] && wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 10s "$url" >/dev/null
    log "$who GET $route: $CONNS connections, /health beside it, ${DURATION}s"
    wrk -t1 -c1 -d"${DURATION}s" --timeout 10s --latency "http://127.0.0.1:$port/health" >"$out.health" &
    local hp=$!
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency "$url" >"$out.route"
    wait "$hp"
    kill -0 "$pid" 2>/dev/null || die "$who died under load"
    local r h
    r=$(wrk_figures "$out.route") || { cat "$out.route" >&2; die "cannot parse wrk output"; }
    h=$(wrk_figures "$out.health") || { cat "$out.health" >&2; die "cannot parse wrk output"; }
    printf '%s\t%s\t%s\t%s\n' "$who" "$route" "${r// /$'\t'}" "${h// /$'\t'}" >>"$RESULTS"
}

# run WHO MLOFFLOADD: starts it on the model folder, measures /health alone, /status and
# /vram/budget, stops it.
run() {
    local who="$1" bin="$2" port pid id
    port=$(free_port)
    rm -rf "$SCRATCH/state"
    mkdir -p "$SCRATCH/state"
    "$bin" --listen "127.0.0.1:$port" --models-dir "$SCRATCH/models" --state-dir "$SCRATCH/state" \
        --ollama-url '' --llama-url http://127.0.0.1:9 --rescan 0 >"$SCRATCH/$who.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    one_model() { get "http://127.0.0.1:$port/models" 2>/dev/null | json models.0.id >/dev/null 2>&1; }
    wait_for "$who" "$pid" one_model || { tail -n 20 "$SCRATCH/$who.log" >&2; die "$who did not list the model"; }
    id=$(get "http://127.0.0.1:$port/models" | json models.0.id)
    local out="$SCRATCH/wrk-$who-health-alone"
    wrk -t1 -c1 -d"${DURATION}s" --timeout 10s --latency "http://127.0.0.1:$port/health" >"$out"
    local h
    h=$(wrk_figures "$out") || die "cannot parse wrk output"
    printf '%s\t/health alone\t-\t-\t-\t-\t%s\n' "$who" "${h// /$'\t'}" >>"$RESULTS"
    measure "$who" /status "http://127.0.0.1:$port/status" "$port" "$pid"
    measure "$who" /vram/budget "http://127.0.0.1:$port/vram/budget?model=$id" "$port" "$pid"
    stop_pid "$pid"
}

[ -z "$BASE_BUILD" ] || run before "$BASE_BUILD/mloffloadd"
run now "$MLOD"

# --- the table ---
echo
echo "/vram/budget beside /status (the anchor) at $CONNS connections, /health on one more; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); ${DURATION}s per row; $SHAPE; commit $COMMIT ($BUILD_TYPE)"
echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
awk -F'\t' '
    { n++; for (i = 1; i <= 10; i++) f[n, i] = $i; if ($2 == "/status") st[$1] = n }
    END {
        printf "%-7s %-14s %10s %9s %9s %5s | %10s %10s %10s | %s\n", "daemon", "route", "req/s", "p50 ms",
            "p99 ms", "errs", "/health p50", "p99 ms", "req/s", "vs /status: req/s, /health p50"
        for (i = 1; i <= n; i++) {
            a = st[f[i, 1]]
            ratio = "-"
            if (f[i, 2] == "/vram/budget" && a)
                ratio = sprintf("%.2fx, %.1fx", f[i, 3] / f[a, 3], f[i, 8] / (f[a, 8] > 0 ? f[a, 8] : 0.001))
            printf "%-7s %-14s %10s %9s %9s %5s | %10.3f %10.3f %10.1f | %s\n", f[i, 1], f[i, 2], f[i, 3], f[i, 4],
                f[i, 5], f[i, 6], f[i, 8], f[i, 9], f[i, 7], ratio
        }
    }' "$RESULTS"
echo
echo "Goal: /health p50 under 1 ms while /vram/budget runs (the loop is free for others)."
