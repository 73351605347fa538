#!/usr/bin/env bash
# scan.sh: a folder scan of N (200) real-shape models by mloffloadd, cold and warm,
# beside llama.cpp's own GGUF reader (gguf_init_from_file from the cached build's
# libggml-base.so) on the same files. The models are `mloffload gen` shapes with their
# full tokenizers (sparse files: only the headers take disk), copied N times in turn.
#
# Rows, each ROUNDS (3) times, the median shown:
#   cold scan   the files are new to the daemon (a fresh registry row each) and out of
#               the page cache (posix_fadvise DONTNEED through dd iflag=nocache: no root
#               needed): POST /models/scan, timed by curl, and the scan's own "ms"
#   warm scan   the same, the files in the page cache (moved out, scanned away, moved back)
#   rescan      nothing changed: every file unchanged, no header read
#   llama.cpp   scan_llama.c: gguf_init_from_file + gguf_free of each file, cold and warm
# Usage: bash bench/scan.sh   (N, ROUNDS, BUILD: the build folder, default build-bench)
set -euo pipefail
log() { echo "scan.sh: $*" >&2; }
die() { log "$*"; exit 1; }
source "$(dirname "$0")/lib.sh"
N="${N:-200}"
ROUNDS="${ROUNDS:-3}"
BUILD="${BUILD:-$BB}"
SHAPES="llama3-8b qwen2-7b qwen3moe-30b gptoss-20b gemma3-4b gemma3-1b llama3.2-1b"
need_tools curl dd cc ninja python3
LIB="$LLAMA/build/bin"
[ -f "$LIB/libggml-base.so" ] || die "no $LIB/libggml-base.so: run scripts/setup-llama.sh"
[ -f "$BUILD/CMakeCache.txt" ] ||
    BUILD_DIR="$BUILD" BUILD_TYPE=Release bash "$ROOT/scripts/build.sh" >/dev/null
scratch_setup scan
START_S=30
bench_build
cc -std=c17 -O2 -Wall -Wextra -I"$LLAMA/llama.cpp/ggml/include" "$ROOT/bench/scan_llama.c" \
    -L"$LIB" -lggml-base -Wl,-rpath,"$LIB" -o "$SCRATCH/scan_llama"

# --- the files: each shape once, then N copies in turn (not links: one file per inode) ---
mkdir -p "$SCRATCH/seed" "$SCRATCH/stage" "$SCRATCH/models" "$SCRATCH/state"
declare -A hdr # bytes before the tensor data, per shape (file less tensor bytes)
for s in $SHAPES; do
    "$MLO" gen "$s" "$SCRATCH/seed/$s.gguf" >/dev/null
    "$MLO" inspect "$SCRATCH/seed/$s.gguf" --json >"$SCRATCH/seed/$s.json"
    hdr[$s]=$(($(json file_bytes <"$SCRATCH/seed/$s.json") - $(json tensor_bytes <"$SCRATCH/seed/$s.json")))
done
i=0
header_bytes=0
while [ "$i" -lt "$N" ]; do
    for s in $SHAPES; do
        [ "$i" -lt "$N" ] || break
        i=$((i + 1))
        cp --sparse=always "$SCRATCH/seed/$s.gguf" "$(printf '%s/stage/m%04d-%s.gguf' "$SCRATCH" "$i" "$s")"
        header_bytes=$((header_bytes + hdr[$s]))
    done
done
header_mib=$((header_bytes >> 20))
log "$N files in $SCRATCH/stage, headers $header_mib MiB in all"

# evict DIR: drops the files' pages from the page cache; dies if that did not work
evict() {
    local f
    sync "$1"/*.gguf # dirty pages (fresh copies) cannot be dropped
    for f in "$1"/*.gguf; do dd if="$f" iflag=nocache count=0 status=none; done
    if command -v fincore >/dev/null; then
        local all=("$1"/*.gguf) # not ls | head: SIGPIPE ends the script under pipefail
        f="${all[0]}"
        [ "$(fincore -n -o PAGES "$f" | tr -d ' ')" = 0 ] || die "$f stays in the page cache"
    fi
}

PORT=$(free_port)
"$MLOD" --listen "127.0.0.1:$PORT" --models-dir "$SCRATCH/models" --state-dir "$SCRATCH/state" \
    --ollama-url '' --llama-url http://127.0.0.1:9 --rescan 0 --idle-ttl 0 \
    >"$SCRATCH/mloffloadd.log" 2>&1 &
DPID=$!
PIDS+=("$DPID")
health() { curl -sf -m 5 -o /dev/null "http://127.0.0.1:$PORT/health"; }
wait_for mloffloadd "$DPID" health || die "mloffloadd did not start (see $SCRATCH/mloffloadd.log)"

# scan WANT_FIELD WANT_COUNT: POST /models/scan; prints "curl_ms scan_ms"
scan() {
    local out body t
    out=$(curl -sf -m 600 -X POST -w '\n%{time_total}' "http://127.0.0.1:$PORT/models/scan") ||
        die "POST /models/scan failed"
    body=${out%%$'\n'*} # no echo | head: SIGPIPE fails a pipeline under pipefail
    t=${out##*$'\n'}
    [ "$(echo "$body" | json "$1")" = "$2" ] || die "scan: expected $1 = $2: $body"
    echo "$(awk -v t="$t" 'BEGIN { printf "%.1f", t * 1000 }') $(echo "$body" | json ms)"
}
llama_ms() { "$SCRATCH/scan_llama" "$SCRATCH"/models/*.gguf | awk '$1 == "RESULT" { print $4 }'; }

R="$SCRATCH/rounds.txt"
: >"$R"
for ((r = 1; r <= ROUNDS; r++)); do
    log "round $r of $ROUNDS"
    mv "$SCRATCH"/stage/*.gguf "$SCRATCH/models/"
    evict "$SCRATCH/models"
    read -r c_curl c_scan < <(scan added "$N")
    read -r u_curl u_scan < <(scan unchanged "$N")
    mv "$SCRATCH"/models/*.gguf "$SCRATCH/stage/"
    scan removed "$N" >/dev/null
    mv "$SCRATCH"/stage/*.gguf "$SCRATCH/models/"
    read -r w_curl w_scan < <(scan added "$N")
    evict "$SCRATCH/models"
    l_cold=$(llama_ms)
    l_warm=$(llama_ms)
    echo "$c_curl $c_scan $w_curl $w_scan $u_curl $u_scan $l_cold $l_warm" >>"$R"
    mv "$SCRATCH"/models/*.gguf "$SCRATCH/stage/"
    scan removed "$N" >/dev/null
done

echo
echo "Folder scan of $N models ($(echo $SHAPES | wc -w) shapes in turn, headers $header_mib MiB in all); $(date -u '+%Y-%m-%d %H:%M UTC'); commit $COMMIT ($BUILD_TYPE, $BUILD); $(nproc) CPUs"
echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Median of $ROUNDS rounds, ms:"
awk '
    { for (i = 1; i <= 8; i++) v[i, NR] = $i; n = NR }
    function med(i,   a, k, j, t) {
        for (k = 1; k <= n; k++) a[k] = v[i, k]
        for (k = 1; k <= n; k++) for (j = k + 1; j <= n; j++) if (a[j] < a[k]) { t = a[k]; a[k] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        printf "%-12s %14s %12s %14s %10s\n", "", "mloffloadd", "(scan ms)", "llama.cpp", "x mlo"
        printf "%-12s %14.1f %12.1f %14.1f %10.1f\n", "cold", med(1), med(2), med(7), med(7) / med(1)
        printf "%-12s %14.1f %12.1f %14.1f %10.1f\n", "warm", med(3), med(4), med(8), med(8) / med(3)
        printf "%-12s %14.1f %12.1f %14s %10s\n", "rescan", med(5), med(6), "-", "-"
    }' "$R"
echo "mloffloadd: POST /models/scan as curl times it (walk, header, estimate, fit, registry); scan ms: the scan alone"
echo "llama.cpp: gguf_init_from_file(no_alloc) + gguf_free of each file, one process"
