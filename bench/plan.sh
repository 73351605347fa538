#!/usr/bin/env bash
# Planning time over 1, 2 and 4 devices: mloffload's planner in-process (bench/plan_bench.c,
# plan_multi_make on an estimate built once) beside llama.cpp's llama-fit-params on the same
# model, context and budgets, its devices being ggml-rpc-servers on loopback (llama-fit-params
# has no budget flag: each device's margin -fitt is its free memory less the budget).
# Run on demand: bash bench/plan.sh. Not a test. See bench/README.md.
#
# Knobs: BENCH_ITERS (timed plans per case, 200), BENCH_CTX (8192), MLOFFLOAD_CACHE.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BB="$ROOT/build-bench"
NLC_VERSION="$(sed -n 's/^NLC_VERSION=//p' "$ROOT/scripts/setup-llama.sh")"
CACHE="${MLOFFLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mloffload}"
BIN="$CACHE/llama-$NLC_VERSION/build/bin"
ITERS="${BENCH_ITERS:-200}"
CTX="${BENCH_CTX:-8192}"
CC="${CC:-cc}"
log() { printf 'plan.sh: %s\n' "$*" >&2; }
[ -x "$BIN/llama-fit-params" ] || { log "no $BIN/llama-fit-params: run scripts/setup-llama.sh"; exit 1; }

mkdir -p "$BB"
cmake -S "$ROOT" -B "$BB" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$BB/cmake.log" 2>&1
ninja -C "$BB" mlo_model mloffload >"$BB/ninja.log" 2>&1
"$CC" -std=c17 -O2 -Wall -Wextra -I"$ROOT/src/base" -I"$ROOT/src/model" "$ROOT/bench/plan_bench.c" \
    "$BB/libmlo_model.a" "$BB/libmlo_base.a" \
    $(pkg-config --libs jansson) -lm -o "$BB/plan_bench"

files=()
for s in llama3-8b qwen3moe-30b gptoss-20b; do
    [ -f "$BB/$s.gguf" ] || "$BB/mloffload" gen "$s" "$BB/$s.gguf" >/dev/null
    files+=("$BB/$s.gguf")
done

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
ports=()
for i in 0 1 2 3; do
    port=$((47200 + i))
    "$BIN/ggml-rpc-server" -H 127.0.0.1 -p "$port" >"$BB/rpc$i.log" 2>&1 &
    pids+=($!)
    ports+=("127.0.0.1:$port")
done
sleep 1

echo "| model | devices | share of the model | mloffload median µs | plan | llama-fit-params s | its answer |"
echo "|---|---:|---:|---:|---|---:|---|"
"$BB/plan_bench" "$ITERS" "$CTX" "${files[@]}" | while IFS=$'\t' read -r _ file n share _ med _ ngl moe budgets; do
    rpc=$(IFS=,; echo "${ports[*]:0:$n}")
    free=$("$BIN/llama-server" --rpc "$rpc" --list-devices </dev/null 2>&1 | sed -n 's/.*, \([0-9]*\) MiB free).*/\1/p' || true)
    fitt=""
    i=0
    IFS=, read -ra bud <<<"$budgets"
    for f in $free; do
        m=$((f - bud[i]))
        fitt="$fitt${fitt:+,}$m"
        i=$((i + 1))
    done
    t0=$(date +%s.%N)
    ans=$(timeout 300 "$BIN/llama-fit-params" -m "$file" -c "$CTX" --rpc "$rpc" -fitt "$fitt" </dev/null 2>"$BB/fit-$n.log" | tail -1 || echo "(timed out)")
    t1=$(date +%s.%N)
    printf '| %s | %s | %s | %s | -ngl %s --n-cpu-moe %s | %.2f | `%s` |\n' "$(basename "$file" .gguf)" \
        "$n" "$share" "$med" "$ngl" "$moe" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$ans"
done
