#!/usr/bin/env bash
# Measures GGUF header parse time of the same files with mloffload's reader, llama.cpp's
# reader, @huggingface/gguf, llama.cpp's gguf-py, and the floor (read() of the header
# bytes). Run on demand: bash bench/parse.sh. Not a test. See bench/README.md.
#
# Knobs (environment):
#   BENCH_ITERS        timed parses per tool and file for the native/JS tools (300)
#   BENCH_BUDGET_S     seconds after which a tool stops early on a file, min 3 parses (3)
#   BENCH_PY_ITERS     timed parses per file for gguf-py (3)
#   BENCH_PY_BUDGET_S  its early-stop budget per file (30)
#   BENCH_WAIT_S       how long to wait for the llama.cpp cache build (1800)
#   MLOFFLOAD_CACHE    as in scripts/setup-llama.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
BB="$ROOT/build-bench"
NLC_VERSION="$(sed -n 's/^NLC_VERSION=//p' "$ROOT/scripts/setup-llama.sh")" # the pinned release
CACHE="${MLOFFLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mloffload}"
LLAMA="$CACHE/llama-$NLC_VERSION"
ITERS="${BENCH_ITERS:-300}"
BUDGET="${BENCH_BUDGET_S:-3}"
PY_ITERS="${BENCH_PY_ITERS:-3}"
PY_BUDGET="${BENCH_PY_BUDGET_S:-30}"
WAIT_S="${BENCH_WAIT_S:-1800}"
PY=/usr/bin/python3 # Debian's, which has python3-numpy; a pyenv python3 on PATH may not
CC="${CC:-cc}"

log() { printf 'parse.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in cmake ninja "$CC" node npm pkg-config "$PY"; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

# 1. llama.cpp: wait for a build in progress; start one when there is none.
if [ ! -f "$LLAMA/.built" ]; then
    if [ -d "$LLAMA" ]; then
        log "waiting for the llama.cpp build in $LLAMA (polling for .built, ${WAIT_S}s at most)"
        waited=0
        while [ ! -f "$LLAMA/.built" ]; do
            [ "$waited" -ge "$WAIT_S" ] && die "no $LLAMA/.built after ${WAIT_S}s; run scripts/setup-llama.sh"
            sleep 10
            waited=$((waited + 10))
        done
    else
        log "building llama.cpp with scripts/setup-llama.sh (minutes)"
        bash "$ROOT/scripts/setup-llama.sh" >/dev/null
    fi
fi
LIB="$LLAMA/build/bin"
[ -f "$LIB/libggml-base.so" ] || die "no $LIB/libggml-base.so"
MODELS="$LLAMA/llama.cpp/models"

# 2. mloffload: a release build of the static library and the CLI, apart from build/.
log "building mloffload (Release) in $BB"
mkdir -p "$BB"
if cmake -S "$ROOT" -B "$BB" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$BB/cmake.log" 2>&1 \
    && ninja -C "$BB" mlo_model mloffload >"$BB/ninja.log" 2>&1; then
    MLO_LIB=("$BB/libmlo_model.a" "$BB/libmlo_base.a")
    MLO_BIN="$BB/mloffload"
else
    # The configure step covers tests/ too; when it fails (a test file not written yet, no
    # cmocka), build the same library sources with CMake's Release flags by hand.
    log "cmake/ninja failed (see $BB/cmake.log, $BB/ninja.log); compiling src/ directly with -O3 -DNDEBUG"
    srcs=$(cd "$ROOT" && ls src/base/*.c src/model/*.c)
    [ -n "$srcs" ] || die "cannot read the mlo sources from CMakeLists.txt"
    mkdir -p "$BB/direct"
    flags=(-std=c17 -O3 -DNDEBUG -D_GNU_SOURCE -DMLO_VERSION='"bench"' -I"$ROOT/src/base" -I"$ROOT/src/model")
    flags+=($(pkg-config --cflags jansson))
    objs=()
    for s in $srcs; do
        o="$BB/direct/$(basename "$s" .c).o"
        "$CC" "${flags[@]}" -c "$ROOT/$s" -o "$o"
        objs+=("$o")
    done
    rm -f "$BB/direct/libmlo.a"
    ar rcs "$BB/direct/libmlo.a" "${objs[@]}"
    "$CC" "${flags[@]}" -I"$ROOT/src/cli" "$ROOT/src/cli/cli.c" "$ROOT/src/cli/cli_gen.c" "$ROOT/src/cli/client_cmds.c" "$BB/direct/libmlo.a" \
        $(pkg-config --libs jansson) -lm -o "$BB/direct/mloffload"
    MLO_LIB=("$BB/direct/libmlo.a")
    MLO_BIN="$BB/direct/mloffload"
fi

# 3. The C harness, twice (see parse_bench.c for why not once).
log "building the C harness"
"$CC" -std=c17 -O2 -Wall -Wextra -DBENCH_MLO -I"$ROOT/src/base" -I"$ROOT/src/model" \
    "$BENCH/parse_bench.c" "${MLO_LIB[@]}" $(pkg-config --libs jansson) -lm -o "$BB/parse_bench_mlo"
"$CC" -std=c17 -O2 -Wall -Wextra -DBENCH_LLAMA -I"$LLAMA/llama.cpp/ggml/include" \
    "$BENCH/parse_bench.c" -L"$LIB" -lggml-base -Wl,-rpath,"$LIB" -o "$BB/parse_bench_llama"

# 4. @huggingface/gguf, pinned in bench/package.json.
want=$(node -p "require('$BENCH/package.json').dependencies['@huggingface/gguf']")
have=$(node -p "try { require('$BENCH/node_modules/@huggingface/gguf/package.json').version } catch { '' }")
if [ "$have" != "$want" ]; then
    log "installing @huggingface/gguf@$want into bench/node_modules"
    npm install --prefix "$BENCH" --no-audit --no-fund --silent >/dev/null
fi

# 5. The files: two real vocab headers and two generated shape-only (sparse) models.
SCRATCH="$(mktemp -d /tmp/mlo-bench.XXXXXX)"
trap 'rm -rf "$SCRATCH"' EXIT
files=("$MODELS/ggml-vocab-llama-bpe.gguf" "$MODELS/ggml-vocab-qwen2.gguf")
for shape in llama3-8b qwen3moe-30b; do
    "$MLO_BIN" gen "$shape" "$SCRATCH/$shape.gguf" >/dev/null
    files+=("$SCRATCH/$shape.gguf")
done
for f in "${files[@]}"; do [ -f "$f" ] || die "missing $f"; done

# 6. Run. The first program warms the page cache for the others.
OUT="$SCRATCH/results.tsv"
log "mloffload, mloffload full, floor"
"$BB/parse_bench_mlo" "$ITERS" "$BUDGET" "${files[@]}" >>"$OUT"
log "llama.cpp gguf_init_from_file"
"$BB/parse_bench_llama" "$ITERS" "$BUDGET" "${files[@]}" >>"$OUT"
log "@huggingface/gguf"
(cd "$BENCH" && node parse_hf.mjs "$ITERS" "$BUDGET" "${files[@]}") >>"$OUT"
log "gguf-py (slow: ${PY_ITERS} parses per file)"
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$LLAMA/llama.cpp/gguf-py" "$PY" "$BENCH/parse_gguf_py.py" "$PY_ITERS" "$PY_BUDGET" \
    "${files[@]}" >>"$OUT"

# 7. One table. ratio = tool median / mloffload median on the same file.
echo
echo "GGUF header parse, warm page cache, in-process; $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo
grep '^RESULT' "$OUT" | awk -F'\t' '
    function hsize(b) { return b >= 1048576 ? sprintf("%.1f MiB", b / 1048576) : sprintf("%.0f KiB", b / 1024) }
    {
        f = $2; sub(/.*\//, "", f); tool = $3
        if (!(f in seen)) { seen[f] = 1; order[nf++] = f }
        key = f SUBSEP tool
        runs[key] = $4; med[key] = $5; mn[key] = $6; kv[key] = $7; nt[key] = $8; extra[key] = $9
        if (tool == "mloffload" && $4 > 0) { mlo[f] = $5; hdr[f] = $9 }
        if (tool == "floor" && $4 > 0) floor_[f] = $5
    }
    END {
        ntools = split("mloffload|mloffload full|llama.cpp|@huggingface/gguf|gguf-py|floor", tools, "|")
        fmt = "%-36s %-18s %5s %11s %11s %9s %10s %13s\n"
        printf fmt, "file (header bytes)", "tool", "runs", "median ms", "min ms", "x mlo", "floor ms", "kv/tensors"
        for (i = 0; i < nf; i++) {
            f = order[i]
            label = f " (" hsize(hdr[f]) ")"
            for (j = 1; j <= ntools; j++) {
                key = f SUBSEP tools[j]
                if (!(key in runs)) continue
                if (runs[key] == 0) {
                    printf "%-36s %-18s %5s  n/a: %s\n", label, tools[j], 0, extra[key]
                } else {
                    ratio = (f in mlo) && mlo[f] > 0 ? sprintf("%.2f", med[key] / mlo[f]) : "-"
                    kvt = tools[j] == "floor" ? "-" : kv[key] "/" nt[key]
                    printf fmt, label, tools[j], runs[key], sprintf("%.3f", med[key]), sprintf("%.3f", mn[key]), ratio, sprintf("%.3f", floor_[f]), kvt
                }
                label = ""
            }
        }
    }'
