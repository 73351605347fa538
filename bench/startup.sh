#!/usr/bin/env bash
# startup.sh: the whole-process time of the offline commands (mloffload plan, inspect,
# --version) beside /bin/true, and of mloffload-client --help (the binary with libcurl,
# which mloffload runs for the daemon commands). Each command runs N times (200) in a
# row; the figure is the mean per run in ms, and the ratio is to /bin/true.
# Usage: bash bench/startup.sh   (BUILD: the build folder, default build-bench)
set -euo pipefail
log() { echo "startup.sh: $*" >&2; }
die() { log "$*"; exit 1; }
source "$(dirname "$0")/lib.sh"
N="${N:-200}"
BUILD="${BUILD:-$BB}"
[ -f "$BUILD/CMakeCache.txt" ] ||
    BUILD_DIR="$BUILD" BUILD_TYPE=Release bash "$ROOT/scripts/build.sh" >/dev/null
ninja -C "$BUILD" mloffload mloffload-client >/dev/null
MLO="$BUILD/mloffload"
scratch_setup startup
"$MLO" gen llama3-8b "$SCRATCH/llama3-8b.gguf" >/dev/null
"$MLO" gen qwen3moe-30b "$SCRATCH/qwen3moe-30b.gguf" >/dev/null

# mean ms per run of "$@", N runs
per_run() {
    local t0 t1 i
    t0=$(date +%s%N)
    for ((i = 0; i < N; i++)); do "$@" >/dev/null 2>&1 || true; done
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.3f", (b - a) / n / 1e6 }'
}

base=""
printf '%-52s %9s %8s\n' "command ($N runs each, $(nproc) CPUs)" "ms/run" "x true"
row() {
    local name="$1"; shift
    local ms
    ms=$(per_run "$@")
    [ -n "$base" ] || base="$ms" # the first row, /bin/true, is the anchor
    printf '%-52s %9s %8s\n' "$name" "$ms" "$(awk -v m="$ms" -v b="$base" 'BEGIN { printf "%.1f", m / b }')"
}
row "/bin/true" /bin/true
row "mloffload --version" "$MLO" --version
row "mloffload-client --help (links libcurl)" "$BUILD/mloffload-client" --help
row "mloffload inspect llama3-8b" "$MLO" inspect "$SCRATCH/llama3-8b.gguf"
row "mloffload plan llama3-8b --vram 6G" "$MLO" plan "$SCRATCH/llama3-8b.gguf" --vram 6G
row "mloffload plan qwen3moe-30b --vram 8G" "$MLO" plan "$SCRATCH/qwen3moe-30b.gguf" --vram 8G
