#!/usr/bin/env bash
# Bytes on the wire per generated token between llama-server and its ggml-rpc-servers:
# real llama-server (the pinned release) with every layer on 1 or 2 ggml-rpc-servers on
# loopback, generated models of three sizes. The counters are the kernel's own per
# connection (ss -ti: bytes_received and bytes_sent of each rpc-server's socket), so
# nothing else on the machine (other loopback traffic, the HTTP requests) is counted.
# Per token: two identical requests with the prompt cache off, n_predict 1 and 1+N; the
# difference of their bytes divided by N is what one decode step costs (the prompt,
# the first token and the request's setup cancel out). Run on demand:
#   bash bench/rpc_bandwidth.sh
# Not a test. Knobs: BENCH_TOKENS (N, 16), BENCH_MODELS ("tiny small-llama llama3.2-1b"),
# BENCH_THREADS (threads of each rpc-server, 1), MLOFFLOAD_LLAMA_BIN (a folder with
# llama-server and ggml-rpc-server; default the cached build of scripts/setup-llama.sh).
# Prints a markdown table on stdout; see bench/README.md and docs/scale.md.
set -euo pipefail

log() { printf 'rpc_bandwidth.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN="${MLOFFLOAD_LLAMA_BIN:-$LLAMA/build/bin}"
[ -d "$BIN" ] || BIN="$(dirname "$BIN")" # lib.sh's form: the llama-server binary itself
N="${BENCH_TOKENS:-16}"
MODELS="${BENCH_MODELS:-tiny small-llama llama3.2-1b}"
THREADS="${BENCH_THREADS:-1}"
[ -x "$BIN/llama-server" ] && [ -x "$BIN/ggml-rpc-server" ] ||
    die "no llama-server and ggml-rpc-server in $BIN: run scripts/setup-llama.sh"
need_tools ss curl python3 cmake ninja

# mloffload (for `gen`): the tree's build if there is one, else a Release build in build-bench
MLO="$ROOT/build/mloffload"
if [ ! -x "$MLO" ]; then
    mkdir -p "$BB"
    cmake -S "$ROOT" -B "$BB" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$BB/cmake.log" 2>&1
    ninja -C "$BB" mloffload >"$BB/ninja.log" 2>&1
    MLO="$BB/mloffload"
fi
scratch_setup rpcbw

# bytes PORT: "RECEIVED SENT" summed over the established sockets of the server on PORT
bytes() {
    ss -tinH state established "( sport = :$1 )" | awk '
        { for (i = 1; i <= NF; i++) {
            if ($i ~ /^bytes_received:/) { split($i, a, ":"); r += a[2] }
            if ($i ~ /^bytes_sent:/) { split($i, a, ":"); s += a[2] } } }
        END { printf "%d %d\n", r, s }'
}

# total PORT...: "RECEIVED SENT" over all the servers
total() {
    local r=0 s=0 p a b
    for p in "$@"; do read -r a b < <(bytes "$p"); r=$((r + a)); s=$((s + b)); done
    echo "$r $s"
}

# complete PORT N: one completion of N tokens, prompt cache off; prints tokens_predicted
complete() {
    curl -sf "http://127.0.0.1:$1/completion" -H 'Content-Type: application/json' \
        -d "{\"prompt\":\"The quick brown fox jumps over\",\"n_predict\":$2,\"cache_prompt\":false,\"temperature\":0,\"ignore_eos\":true}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["tokens_predicted"])'
}

kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

run_case() { # MODEL_FILE SERVERS
    local file="$1" n="$2" ports=() rpcs=() i p lport lpid r0 s0 r1 s1 r2 s2 k1 kn
    for ((i = 0; i < n; i++)); do
        p=$(free_port)
        "$BIN/ggml-rpc-server" -H 127.0.0.1 -p "$p" -t "$THREADS" >"$SCRATCH/rpc$i.log" 2>&1 &
        PIDS+=($!)
        ports+=("$p")
        rpcs+=("127.0.0.1:$p")
    done
    for p in "${ports[@]}"; do
        for ((i = 0; i < 100; i++)); do
            (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
            sleep 0.1
        done
    done
    # the probe above opened and closed one connection per server: counters start at the
    # llama-server's own connection (a ggml-rpc-server serves one client at a time)
    lport=$(free_port)
    "$BIN/llama-server" -m "$file" --rpc "$(IFS=,; echo "${rpcs[*]}")" -ngl 99 -c 512 -np 1 \
        --host 127.0.0.1 --port "$lport" >"$SCRATCH/llama.log" 2>&1 &
    lpid=$!
    PIDS+=("$lpid")
    for ((i = 0; i < 1200; i++)); do
        curl -sf "http://127.0.0.1:$lport/health" >/dev/null 2>&1 && break
        kill -0 "$lpid" 2>/dev/null || die "llama-server exited: $(tail -5 "$SCRATCH/llama.log")"
        sleep 0.25
    done
    read -r r0 s0 < <(total "${ports[@]}")
    k1=$(complete "$lport" 1)
    read -r r1 s1 < <(total "${ports[@]}")
    kn=$(complete "$lport" $((N + 1)))
    read -r r2 s2 < <(total "${ports[@]}")
    [ "$k1" = 1 ] && [ "$kn" = $((N + 1)) ] || die "asked 1 and $((N + 1)) tokens, got $k1 and $kn"
    local up=$(((r2 - r1) - (r1 - r0))) down=$(((s2 - s1) - (s1 - s0)))
    printf '| %s | %d | %s | %s / %s | %s | %s | %s |\n' "$(basename "$file" .gguf)" "$n" \
        "$(awk -v b="$r0" 'BEGIN { printf "%.1f", b / 1048576 }')" \
        "$(kib $((r1 - r0)))" "$(kib $((s1 - s0)))" "$(kib $((up / N)))" "$(kib $((down / N)))" \
        "$(kib $(((up + down) / N)))"
    stop_pid "$lpid" 30
    for p in "${PIDS[@]}"; do stop_pid "$p" 10; done
    PIDS=()
}

echo "| model | rpc-servers | load: MiB to the servers | a request of 1 token: KiB to / from the servers | per token to the servers KiB | per token from the servers KiB | per token total KiB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for m in $MODELS; do
    f="$SCRATCH/$m.gguf"
    case "$m" in
    llama3.2-1b) "$MLO" gen "$m" "$f" --quant Q8_0 --random >/dev/null ;;
    *) "$MLO" gen "$m" "$f" --random >/dev/null ;;
    esac
    for n in 1 2; do run_case "$f" "$n"; done
    rm -f "$f"
done
