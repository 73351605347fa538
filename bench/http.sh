#!/usr/bin/env bash
# Measures mloffloadd's HTTP API under load (GET /status and GET /models with 200 models
# in its folder) and, in the same run, llama-server's GET /health as the anchor, with wrk
# on loopback. Prints one table. Run on demand: bash bench/http.sh. Not a test. See
# bench/README.md, section "HTTP API under load".
#
# Knobs (environment):
#   DURATION        seconds of each measured wrk run (10)
#   WARMUP          seconds of an unmeasured wrk run before each measured one (1; 0: none)
#   CONNECTIONS     connection counts to measure, space-separated ("1 64")
#   THREADS         wrk threads (2; a run with fewer connections uses that many threads,
#                   since wrk needs at least one connection per thread)
#   N_MODELS        models in mloffloadd's folder (200)
#   BENCH_VOCAB     vocab file for the generated models (llama.cpp's ggml-vocab-llama-spm,
#                   32k tokens, which keeps each file's header, its only real data, at
#                   about 0.7 MB; the llama3-8b default vocab would make it 7.5 MB)
#   START_S         how long to wait for each server to be ready (120)
#   MLOFFLOAD_LLAMA_BIN  llama-server to use (default: the cached build's)
#   MLOFFLOAD_CACHE as in scripts/setup-llama.sh
set -euo pipefail

log() { printf 'http.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-1}"
CONNECTIONS="${CONNECTIONS:-1 64}"
THREADS="${THREADS:-2}"
N_MODELS="${N_MODELS:-200}"
VOCAB="${BENCH_VOCAB:-$LLAMA/llama.cpp/models/ggml-vocab-llama-spm.gguf}"
START_S="${START_S:-120}"

for v in DURATION WARMUP THREADS N_MODELS START_S; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
[ "$DURATION" -ge 1 ] || die "DURATION must be at least 1"
[ "$THREADS" -ge 1 ] || die "THREADS must be at least 1"
[ "$N_MODELS" -ge 1 ] || die "N_MODELS must be at least 1"
for c in $CONNECTIONS; do [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "bad connection count '$c'"; done
need_tools wrk curl python3 cmake ninja
[ -x "$LLAMA_BIN" ] || die "no llama-server at $LLAMA_BIN: run scripts/setup-llama.sh or set MLOFFLOAD_LLAMA_BIN"
[ -f "$VOCAB" ] || die "no vocab file $VOCAB: run scripts/setup-llama.sh or set BENCH_VOCAB"

# --- processes and the scratch folder: everything started here is stopped on exit ---
SCRATCH="$(mktemp -d /tmp/mlo-http.XXXXXX)"
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Polls a command until it succeeds, while PID lives, for START_S seconds at most.
wait_for() {
    local what="$1" pid="$2" end=$((SECONDS + START_S))
    shift 2
    while [ "$SECONDS" -lt "$end" ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        "$@" && return 0
        sleep 0.2
    done
    log "$what: not ready after ${START_S}s"
    return 1
}

# kB of VmRSS, VmHWM and RssAnon of a process, as "RSS HWM ANON". RssAnon is the part of
# VmRSS that is the process's own (heap, stacks); the rest is mostly shared library pages.
mem_kb() {
    awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 }
        END { print r + 0, h + 0, a + 0 }' "/proc/$1/status"
}

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. build (Release, in build-bench/, apart from build/) ---
log "building mloffload and mloffloadd (Release) in $BB"
if ! BUILD_DIR="$BB" BUILD_TYPE=Release bash "$ROOT/scripts/build.sh" >"$SCRATCH/build.log" 2>&1; then
    # scripts/build.sh builds the tests too; when one of them does not build, the two
    # programs this needs may still.
    log "scripts/build.sh failed (tail below); building only mloffload and mloffloadd"
    tail -n 20 "$SCRATCH/build.log" >&2
    ninja -C "$BB" mloffload mloffloadd >&2 || die "cannot build mloffloadd"
fi
MLO="$BB/mloffload"
MLOD="$BB/mloffloadd"
if [ ! -x "$MLO" ] || [ ! -x "$MLOD" ]; then die "no $MLO or $MLOD after the build"; fi

# --- 2. models: one shape-only (sparse) model, copied N_MODELS times, and llama-server's tiny ---
mkdir -p "$SCRATCH/models" "$SCRATCH/state"
export MLOFFLOAD_LLAMA_DIR="$LLAMA/llama.cpp"
"$MLO" gen llama3-8b "$SCRATCH/seed.gguf" --vocab "$VOCAB" >/dev/null
for ((i = 1; i <= N_MODELS; i++)); do
    # not hard links: the scanner counts one file per inode
    cp --sparse=always "$SCRATCH/seed.gguf" "$(printf '%s/models/model-%03d.gguf' "$SCRATCH" "$i")"
done
rm -f "$SCRATCH/seed.gguf"
"$MLO" gen tiny "$SCRATCH/tiny.gguf" >/dev/null
log "scratch folder $SCRATCH: $N_MODELS models of $(du -h --apparent-size "$SCRATCH/models/model-001.gguf" | cut -f1) apparent; disk used $(du -sh "$SCRATCH" | cut -f1)"

RESULTS="$SCRATCH/results.tsv"
: >"$RESULTS"

# One measured wrk run (after a warm-up run) of URL; appends a line to RESULTS:
# target route conns rps p50_ms p99_ms rss_kb hwm_kb anon_kb resp_bytes errors
measure() {
    local target="$1" route="$2" url="$3" pid="$4" c t out bytes
    bytes=$(curl -sf -m 30 -o /dev/null -w '%{size_download}' "$url") || die "$target $route: request failed"
    for c in $CONNECTIONS; do
        t=$((THREADS < c ? THREADS : c))
        if [ "$WARMUP" -gt 0 ]; then
            wrk -t"$t" -c"$c" -d"${WARMUP}s" --timeout 10s "$url" >/dev/null
        fi
        log "$target GET $route: $c connection(s), $t thread(s), ${DURATION}s"
        out="$SCRATCH/wrk-$target-${route//\//_}-$c.txt"
        wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 10s --latency "$url" >"$out"
        kill -0 "$pid" 2>/dev/null || die "$target died under load (see $out)"
        local rss hwm anon
        read -r rss hwm anon < <(mem_kb "$pid")
        awk -v target="$target" -v route="$route" -v c="$c" -v rss="$rss" -v hwm="$hwm" -v anon="$anon" \
            -v bytes="$bytes" '
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
            /^Requests\/sec:/ { rps = $2 }
            /Socket errors:/ {
                for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) err += $i + 0
            }
            /Non-2xx or 3xx responses:/ { err += $NF }
            END {
                if (rps == "" || p99 == "") { print "cannot parse wrk output" > "/dev/stderr"; exit 1 }
                printf "%s\t%s\t%d\t%.1f\t%.3f\t%.3f\t%d\t%d\t%d\t%d\t%d\n", target, route, c, rps, p50, p99, rss, hwm, anon, bytes, err + 0
            }' "$out" >>"$RESULTS" || { cat "$out" >&2; die "cannot parse $out"; }
    done
}

count_models() {
    curl -sf -m 10 "http://127.0.0.1:$1/models" 2>/dev/null |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["models"]))' 2>/dev/null
}
models_ready() { [ "$(count_models "$1")" = "$N_MODELS" ]; }
health_ok() { [ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health")" = 200 ]; }

# --- 3. mloffloadd ---
PORT=$(free_port)
"$MLOD" --listen "127.0.0.1:$PORT" --models-dir "$SCRATCH/models" --state-dir "$SCRATCH/state" \
    --ollama-url '' --llama-url http://127.0.0.1:9 --rescan 0 >"$SCRATCH/mloffloadd.log" 2>&1 &
DPID=$!
PIDS+=("$DPID")
if ! wait_for "mloffloadd" "$DPID" models_ready "$PORT"; then
    tail -n 20 "$SCRATCH/mloffloadd.log" >&2
    die "mloffloadd did not list $N_MODELS models (it lists $(count_models "$PORT" || echo none))"
fi
read -r D_IDLE_RSS D_IDLE_HWM D_IDLE_ANON < <(mem_kb "$DPID")
log "mloffloadd (pid $DPID, port $PORT) lists $N_MODELS models; idle VmRSS $D_IDLE_RSS kB, VmHWM $D_IDLE_HWM kB, RssAnon $D_IDLE_ANON kB"
measure mloffloadd /status "http://127.0.0.1:$PORT/status" "$DPID"
measure mloffloadd /models "http://127.0.0.1:$PORT/models" "$DPID"
stop_pid "$DPID"

# --- 4. the anchor: llama-server /health, serving the tiny model ---
LPORT=$(free_port)
"$LLAMA_BIN" -m "$SCRATCH/tiny.gguf" -c 512 --port "$LPORT" --host 127.0.0.1 -t 2 \
    >"$SCRATCH/llama-server.log" 2>&1 &
LPID=$!
PIDS+=("$LPID")
if ! wait_for "llama-server" "$LPID" health_ok "$LPORT"; then
    tail -n 20 "$SCRATCH/llama-server.log" >&2
    die "llama-server did not answer GET /health with 200"
fi
read -r L_IDLE_RSS L_IDLE_HWM L_IDLE_ANON < <(mem_kb "$LPID")
log "llama-server (pid $LPID, port $LPORT) ready; idle VmRSS $L_IDLE_RSS kB, VmHWM $L_IDLE_HWM kB, RssAnon $L_IDLE_ANON kB"
measure llama-server /health "http://127.0.0.1:$LPORT/health" "$LPID"
L_THREADS=$(awk '/^Threads:/ { print $2 }' "/proc/$LPID/status")
stop_pid "$LPID"

# --- 5. one table ---
echo
echo "HTTP API under wrk on loopback; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); ${DURATION}s per row, wrk -t$THREADS (-t1 at 1 connection)"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "Idle, before any load: mloffloadd ($N_MODELS models) VmRSS $(mib "$D_IDLE_RSS") MiB, RssAnon $(mib "$D_IDLE_ANON") MiB; llama-server (tiny model, -c 512 -t 2) VmRSS $(mib "$L_IDLE_RSS") MiB, RssAnon $(mib "$L_IDLE_ANON") MiB, $L_THREADS threads after its load."
echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
awk -F'\t' '
    { n++; for (i = 1; i <= 11; i++) f[n, i] = $i
      if ($1 == "llama-server") { arps[$3] = $4; ap99[$3] = $6 } }
    END {
        fmt = "%-13s %-8s %5s %9s %9s %9s %12s %9s %9s %6s %8s %7s\n"
        printf fmt, "target", "route", "conns", "req/s", "p50 ms", "p99 ms", "RSS/HWM MiB", "anon MiB", "resp B", "errors", "x req/s", "x p99"
        for (r = 1; r <= n; r++) {
            c = f[r, 3]
            xr = (c in arps) && arps[c] > 0 ? sprintf("%.3f", f[r, 4] / arps[c]) : "-"
            xp = (c in ap99) && ap99[c] > 0 ? sprintf("%.2f", f[r, 6] / ap99[c]) : "-"
            printf fmt, f[r, 1], f[r, 2], c, sprintf("%.0f", f[r, 4]), sprintf("%.3f", f[r, 5]), sprintf("%.3f", f[r, 6]), sprintf("%.1f/%.1f", f[r, 7] / 1024, f[r, 8] / 1024), sprintf("%.1f", f[r, 9] / 1024), f[r, 10], f[r, 11], xr, xp
        }
    }' "$RESULTS"
echo
echo "x req/s, x p99: the row's req/s and p99 over llama-server GET /health's at the same connection count."
