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
