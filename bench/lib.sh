# Shared by the bench scripts (sourced): where things are, process stopping and tool
# checks. The sourcing script defines log() and die() first.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BB="$ROOT/build-bench"
NLC_VERSION="$(sed -n 's/^NLC_VERSION=//p' "$ROOT/scripts/setup-llama.sh")" # the pinned release
CACHE="${MLOFFLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mloffload}"
LLAMA="$CACHE/llama-$NLC_VERSION"
LLAMA_BIN="${MLOFFLOAD_LLAMA_BIN:-$LLAMA/build/bin/llama-server}"

# stop_pid PID [SECONDS]: SIGTERM, then waits up to SECONDS (10), then SIGKILL. Reaps it.
stop_pid() {
    local pid="$1" secs="${2:-10}" i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop on SIGTERM in $secs s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# need_tools TOOL...: dies naming the first one missing.
need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "needs $tool"
    done
}

# need_llama: dies unless the cached llama.cpp build is there: llama-server and the vocab
# files of its tree (mloffload gen reads them).
need_llama() {
    [ -x "$LLAMA_BIN" ] || die "no llama-server at $LLAMA_BIN: run scripts/setup-llama.sh or set MLOFFLOAD_LLAMA_BIN"
    [ -d "$LLAMA/llama.cpp/models" ] || die "no llama.cpp tree at $LLAMA/llama.cpp (vocab files): run scripts/setup-llama.sh"
}

# scratch_setup NAME: the scratch folder /tmp/mlo-NAME.XXXXXX (SCRATCH), the list of
# started pids (PIDS), and on exit: every pid stopped, no llama-server of this run left
# (LEFTOVERS=1 when some had to be killed), the folder removed. Also free_port and
# wait_for. The sourcing script calls it once, after its checks.
scratch_setup() {
    SCRATCH="$(mktemp -d "/tmp/mlo-$1.XXXXXX")"
    PIDS=()

    # llama-server processes of this run: every one has a path under SCRATCH on its command
    # line (a child's model file, the router's --models-dir). Other llama-servers are left alone.
    our_llamas() { pgrep -f -- "llama-server .*$SCRATCH/" || true; }
    # After the servers have stopped, no child of theirs may remain: waits up to 15 s, then
    # kills the leftovers one by one (by pid) and says so.
    LEFTOVERS=0
    check_no_llamas() {
        local what="$1" i left
        for ((i = 0; i < 150; i++)); do
            left=$(our_llamas)
            [ -z "$left" ] && return 0
            sleep 0.1
        done
        log "$what: llama-server processes left after their server stopped: $(echo "$left" | tr '\n' ' '); killing them"
        for i in $left; do kill -KILL "$i" 2>/dev/null || true; done
        LEFTOVERS=1
    }
    cleanup() {
        local rc=$? p
        for p in "${PIDS[@]}"; do stop_pid "$p" 30; done
        check_no_llamas "cleanup"
        if [ -n "$(our_llamas)" ]; then
            log "llama-server processes of this run still exist: $(our_llamas | tr '\n' ' ')"
            rc=1
        fi
        rm -rf "$SCRATCH"
        exit "$rc"
    }
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    trap 'log "stopped: a command failed at line $LINENO"' ERR

    free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    }

    # Polls a command until it succeeds, while PID lives, for START_S seconds at most.
    wait_for() {
        local what="$1" pid="$2" end=$((SECONDS + START_S))
        shift 2
        while [ "$SECONDS" -lt "$end" ]; do
            kill -0 "$pid" 2>/dev/null || { log "$what exited"; return 1; }
            "$@" && return 0
            sleep 0.1
        done
        log "$what: not ready after ${START_S}s"
        return 1
    }
}

# json FIELD.PATH < JSON: one field (dots walk objects and arrays; a list prints its
# items separated by spaces).
json() {
    python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(" ".join(map(str, v)) if isinstance(v, list) else v)' "$1"
}

# metric PORT NAME: one figure of the daemon's /metrics (get is the sourcing script's).
metric() { get "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

# bench_build: LOAD_START and COMMIT for the report, then mloffload and mloffloadd of
# BUILD brought up to date with ninja (log in $SCRATCH/build.log): MLO, MLOD, BUILD_TYPE.
bench_build() {
    LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
    COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    [ -z "$(git -C "$ROOT" status --porcelain -- src 2>/dev/null)" ] ||
        COMMIT="$COMMIT + uncommitted changes in src/"
    log "ninja -C $BUILD mloffload mloffloadd"
    ninja -C "$BUILD" mloffload mloffloadd >"$SCRATCH/build.log" 2>&1 ||
        { tail -n 20 "$SCRATCH/build.log" >&2; die "cannot build mloffload and mloffloadd in $BUILD"; }
    MLO="$BUILD/mloffload"
    MLOD="$BUILD/mloffloadd"
    BUILD_TYPE="$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
}

# bench_build_release TARGET...: everything built in Release in BB by scripts/build.sh (log
# in $SCRATCH/build.log); when that fails (it builds the tests too, and one of them may
# not build), only TARGET... with ninja. Then MLO and MLOD, checked to exist.
bench_build_release() {
    log "building $* (Release) in $BB"
    if ! BUILD_DIR="$BB" BUILD_TYPE=Release bash "$ROOT/scripts/build.sh" >"$SCRATCH/build.log" 2>&1; then
        log "scripts/build.sh failed (tail below); building only $*"
        tail -n 20 "$SCRATCH/build.log" >&2
        ninja -C "$BB" "$@" >&2 || die "cannot build $*"
    fi
    MLO="$BB/mloffload"
    MLOD="$BB/mloffloadd"
    if [ ! -x "$MLO" ] || [ ! -x "$MLOD" ]; then die "no $MLO or $MLOD after the build"; fi
}

# bench_fake_nvml: FAKE_NVML, the tests' fake NVML (a test double of libnvidia-ml.so,
# tests/fake_nvml.c): BUILD's when it has one (it is built with the tests), else compiled
# into $SCRATCH/fake-nvml.
bench_fake_nvml() {
    if ninja -C "$BUILD" fake_nvml >>"$SCRATCH/build.log" 2>&1 &&
        [ -f "$BUILD/fake-nvml/libnvidia-ml.so" ]; then
        FAKE_NVML="$BUILD/fake-nvml/libnvidia-ml.so"
    else
        FAKE_NVML="$SCRATCH/fake-nvml/libnvidia-ml.so"
        mkdir -p "$SCRATCH/fake-nvml"
        cc -O2 -shared -fPIC -o "$FAKE_NVML" "$ROOT/tests/fake_nvml.c" ||
            die "cannot build tests/fake_nvml.c"
    fi
}

# log_port LOGFILE: the port in mloffloadd's "listening on http://127.0.0.1:PORT" line.
log_port() {
    sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$1" | head -n 1
}

# start_mloffloadd ARG...: MLOD on 127.0.0.1 (a port it picks) over DIR (state in
# DIR/state), with what the bench runs share (the cached llama-server, no Ollama or remote
# llama-server, no rescans, no idle unloads) and ARG..., its log in
# $SCRATCH/mloffloadd.log; waits until it lists the N_FILES models. Sets DPID and DPORT.
start_mloffloadd() {
    "$MLOD" --listen 127.0.0.1:0 --models-dir "$DIR" --state-dir "$DIR/state" \
        --llama-server "$LLAMA_BIN" --ollama-url '' --llama-url http://127.0.0.1:9 \
        --rescan 0 --idle-ttl 0 "$@" >"$SCRATCH/mloffloadd.log" 2>&1 &
    DPID=$!
    PIDS+=("$DPID")
    DPORT=
    daemon_port() { DPORT=$(log_port "$SCRATCH/mloffloadd.log"); [ -n "$DPORT" ]; }
    daemon_ready() {
        [ "$(curl -sf -m 10 "http://127.0.0.1:$DPORT/models" |
            python3 -c 'import json, sys; print(len(json.load(sys.stdin)["models"]))' 2>/dev/null)" = "$N_FILES" ]
    }
    if ! wait_for "mloffloadd" "$DPID" daemon_port || ! wait_for "mloffloadd" "$DPID" daemon_ready; then
        tail -n 20 "$SCRATCH/mloffloadd.log" >&2
        die "mloffloadd did not start or did not list the $N_FILES models"
    fi
    log "mloffloadd (pid $DPID) on port $DPORT lists $N_FILES models"
}
