#!/usr/bin/env bash
# Measures the time to switch from model A to model B (from the request until B answers)
# with mloffloadd's POST /switch and, in the same run, with llama-server's router mode
# (--models-dir, --models-max 1) as the anchor. Prints one table. Run on demand:
# bash bench/switch.sh. Not a test. See bench/README.md, section "Switching models".
#
# Knobs (environment):
#   SWITCHES        timed switches per pair and system, alternating A->B, B->A (10)
#   PAIRS           model shapes to measure, one pair of each ("tiny small-moe"); every
#                   shape of `mloffload gen --list` that llama-server runs will do; all but
#                   tiny are written with --random (real data, on disk)
#   CTX             context size for both systems (512)
#   START_S         bound on each server start and on each single request (120)
#   MATCHED         1: also time the router with mloffloadd's child arguments (1)
#   MLOFFLOAD_LLAMA_BIN  llama-server to use (default: the cached build's)
#   MLOFFLOAD_CACHE as in scripts/setup-llama.sh
set -euo pipefail

log() { printf 'switch.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SWITCHES="${SWITCHES:-10}"
PAIRS="${PAIRS:-tiny small-moe}"
CTX="${CTX:-512}"
START_S="${START_S:-120}"
MATCHED="${MATCHED:-1}"

for v in SWITCHES CTX START_S MATCHED; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
[ "$SWITCHES" -ge 1 ] || die "SWITCHES must be at least 1"
[ "$START_S" -ge 1 ] || die "START_S must be at least 1"
[ -n "$PAIRS" ] || die "PAIRS is empty"
need_tools curl python3 cmake ninja pgrep
need_llama

# --- processes and the scratch folder: everything started here is stopped on exit ---
scratch_setup switch

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. build (Release, in build-bench/, apart from build/) ---
bench_build_release mloffload mloffloadd

# --- 2. models: one pair per shape, the two files of a pair differ only in their weights ---
DIR="$SCRATCH/models"
mkdir -p "$DIR/state"
export MLOFFLOAD_LLAMA_DIR="$LLAMA/llama.cpp"
declare -A NAME_A NAME_B
for shape in $PAIRS; do
    if [ "$shape" = tiny ]; then
        a=a b=b extra=()          # tiny always has random F32 weights
    else
        a="$shape-a" b="$shape-b" extra=(--random)
    fi
    "$MLO" gen "$shape" "$DIR/$a.gguf" --seed 1 "${extra[@]}" >/dev/null || die "cannot generate $shape"
    "$MLO" gen "$shape" "$DIR/$b.gguf" --seed 2 "${extra[@]}" >/dev/null || die "cannot generate $shape"
    NAME_A[$shape]=$a NAME_B[$shape]=$b
done
N_FILES=$(find "$DIR" -maxdepth 1 -name '*.gguf' | wc -l)
log "models in $DIR: $(cd "$DIR" && du -h --apparent-size -- *.gguf | awk '{ printf "%s %s  ", $2, $1 }'); disk used $(du -sh "$DIR" | cut -f1)"
# read once so that neither system is the first to take them from disk
cat "$DIR"/*.gguf >/dev/null

RESULTS="$SCRATCH/results.tsv"   # pair system switch_no ms
: >"$RESULTS"

# One request, bounded; prints "HTTP_CODE TIME_TOTAL_S" and leaves the body in $SCRATCH/body.
post() {
    curl -s -m "$START_S" -o "$SCRATCH/body" -w '%{http_code} %{time_total}\n' \
        -H 'Content-Type: application/json' -X POST "$1" -d "$2" || echo "000 0"
}
ms_of() { awk -v s="$1" 'BEGIN { printf "%.3f", s * 1000 }'; }
completion_body() { printf '{"model":"%s","prompt":"hi","max_tokens":1}' "$1"; }
json_field() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$SCRATCH/body" "$1"
}

# --- 3. the servers: mloffloadd and the anchor, llama-server in router mode ---
# All of them run at once, and the switches are interleaved (one switch of each system in
# turn), so that other load on the machine falls on every system alike. Between its
# switches each system's loaded child sits idle.
count_models() {
    curl -sf -m 10 "http://127.0.0.1:$1$2" 2>/dev/null |
        python3 -c 'import json, sys; j = json.load(sys.stdin); print(len(j.get("models") or j.get("data") or []))' 2>/dev/null
}
start_mloffloadd

# The arguments mloffloadd gives its children (beyond -m, --alias, --host, --port, -lv 4),
# from its plan for the first model: the router's second run gets the same ones.
first=${PAIRS%% *}
read -r code t < <(post "http://127.0.0.1:$DPORT/load" "{\"model\":\"${NAME_A[$first]}\",\"ctx\":$CTX}")
[ "$code" = 200 ] || { cat "$SCRATCH/body" >&2; die "mloffloadd: POST /load ${NAME_A[$first]} answered $code"; }
CHILD_ARGS=$(python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["plan"]["args"]))' "$SCRATCH/body")
read -r code t < <(post "http://127.0.0.1:$DPORT/unload" "{\"model\":\"${NAME_A[$first]}\"}")
[ "$code" = 200 ] || { cat "$SCRATCH/body" >&2; die "mloffloadd: POST /unload answered $code"; }
log "mloffloadd's child args: $CHILD_ARGS"

# A router with at most one model loaded; $1: label; the rest: the default arguments it
# gives its children. A chat or text completion that names a model that is not loaded makes
# the router unload the least recently used one (--models-max 1), start the named one and
# forward the request once it is ready. (POST /models/load answers as soon as the child is
# spawned, not when it is ready, so it cannot be timed alone.) So one switch is one such
# completion, max_tokens 1.
ROUTERS=()           # "label|port"
start_router() {
    local label="$1" port pid
    shift
    port=$(free_port)
    "$LLAMA_BIN" --models-dir "$DIR" --models-max 1 --port "$port" --host 127.0.0.1 "$@" \
        >"$SCRATCH/router-$port.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    router_ready() { [ "$(count_models "$port" /models)" = "$N_FILES" ]; }
    if ! wait_for "router" "$pid" router_ready; then
        tail -n 20 "$SCRATCH/router-$port.log" >&2
        die "the router did not list the $N_FILES models"
    fi
    log "$label (pid $pid, port $port, default args: $*) lists $N_FILES models"
    ROUTERS+=("$label|$port")
}
start_router "router -c $CTX" -c "$CTX"
if [ "$MATCHED" = 1 ]; then
    read -ra margs <<<"$CHILD_ARGS"
    start_router "router, mloffloadd's child args" "${margs[@]}"
fi

# One switch of mloffloadd, FROM -> TO: POST /switch, then the one-token completion on TO
# through mloffloadd's /v1/completions (a child answers only with its own key, which only
# the daemon holds). Records both times.
switch_mlo() {
    local shape="$1" i="$2" from="$3" to="$4" code t code2 t2 port
    read -r code t < <(post "http://127.0.0.1:$DPORT/switch" "{\"from\":\"$from\",\"to\":\"$to\",\"ctx\":$CTX}")
    [ "$code" = 200 ] && [ "$(json_field state)" = ready ] ||
        { cat "$SCRATCH/body" >&2; die "mloffloadd: POST /switch $from -> $to answered $code"; }
    port=$(json_field port)
    read -r code2 t2 < <(post "http://127.0.0.1:$DPORT/v1/completions" "$(completion_body "$to")")
    [ "$code2" = 200 ] || { cat "$SCRATCH/body" >&2; die "mloffloadd: completion on $to (child port $port) answered $code2"; }
    printf '%s\tmloffloadd /switch\t%d\t%s\n' "$shape" "$i" "$(ms_of "$t")" >>"$RESULTS"
    printf '%s\tmloffloadd /switch + completion\t%d\t%s\n' "$shape" "$i" \
        "$(awk -v a="$t" -v b="$t2" 'BEGIN { printf "%.3f", (a + b) * 1000 }')" >>"$RESULTS"
    log "mloffloadd $shape #$i $from -> $to: /switch $(ms_of "$t") ms + completion $(ms_of "$t2") ms"
}
# One switch of a router ("label|port"), to TO: the completion naming TO.
switch_router() {
    local r="$1" shape="$2" i="$3" from="$4" to="$5" code t
    read -r code t < <(post "http://127.0.0.1:${r#*|}/v1/completions" "$(completion_body "$to")")
    [ "$code" = 200 ] || { cat "$SCRATCH/body" >&2; die "${r%|*}: completion on $to answered $code"; }
    if [ "$i" -gt 0 ]; then
        printf '%s\t%s\t%d\t%s\n' "$shape" "${r%|*}" "$i" "$(ms_of "$t")" >>"$RESULTS"
        log "${r%|*} $shape #$i $from -> $to: $(ms_of "$t") ms"
    fi
}

# --- 4. the switches, pair by pair ---
for shape in $PAIRS; do
    a=${NAME_A[$shape]} b=${NAME_B[$shape]}
    # A loaded everywhere first (untimed)
    read -r code t < <(post "http://127.0.0.1:$DPORT/load" "{\"model\":\"$a\",\"ctx\":$CTX}")
    [ "$code" = 200 ] || { cat "$SCRATCH/body" >&2; die "mloffloadd: POST /load $a answered $code"; }
    for r in "${ROUTERS[@]}"; do switch_router "$r" "$shape" 0 - "$a"; done
    from=$a to=$b
    for ((i = 1; i <= SWITCHES; i++)); do
        # the order of the systems turns each round, so none is always first after a pause
        n=$((1 + ${#ROUTERS[@]}))
        for ((k = 0; k < n; k++)); do
            s=$(((i + k) % n))
            if [ "$s" = 0 ]; then
                switch_mlo "$shape" "$i" "$from" "$to"
            else
                switch_router "${ROUTERS[$((s - 1))]}" "$shape" "$i" "$from" "$to"
            fi
        done
        tmp=$from from=$to to=$tmp
    done
    read -r code t < <(post "http://127.0.0.1:$DPORT/unload" "{\"model\":\"$from\"}")
    [ "$code" = 200 ] || { cat "$SCRATCH/body" >&2; die "mloffloadd: POST /unload $from answered $code"; }
    for r in "${ROUTERS[@]}"; do
        read -r code t < <(post "http://127.0.0.1:${r#*|}/models/unload" "{\"model\":\"$from\"}")
        [ "$code" = 200 ] || { cat "$SCRATCH/body" >&2; die "${r%|*}: POST /models/unload $from answered $code"; }
    done
done
for p in "${PIDS[@]}"; do stop_pid "$p" 30; done
PIDS=()
check_no_llamas "the servers"

# --- 5. one table ---
echo
echo "Switching models, A -> B -> A ..., $SWITCHES timed switches per row, ctx $CTX; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mloffloadd's child args: $CHILD_ARGS (and -lv 4); systems interleaved, one switch each in turn"
for shape in $PAIRS; do
    echo "  $shape: ${NAME_A[$shape]}.gguf, ${NAME_B[$shape]}.gguf ($(du -h --apparent-size "$DIR/${NAME_A[$shape]}.gguf" | cut -f1) each)"
done
echo
python3 - "$RESULTS" <<'EOF'
import math, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    pair, system, _, ms = line.rstrip("\n").split("\t")
    if (pair, system) not in rows:
        order.append((pair, system))
        rows[(pair, system)] = []
    rows[(pair, system)].append(float(ms))

def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2

def p90(v):  # nearest rank
    v = sorted(v)
    return v[max(0, math.ceil(0.9 * len(v)) - 1)]

pairs = list(dict.fromkeys(p for p, _ in order))
systems = sorted(dict.fromkeys(s for _, s in order), key=lambda s: not s.startswith("mloffloadd"))
order = sorted(order, key=lambda k: (pairs.index(k[0]), systems.index(k[1])))
fmt = "%-10s %-34s %8s %10s %10s %7s"
print(fmt % ("pair", "system", "switches", "median ms", "p90 ms", "ratio"))
for pair, system in order:
    v = rows[(pair, system)]
    ratio = "-"
    same = rows.get((pair, "mloffloadd /switch + completion"))
    if system.startswith("router") and same:
        ratio = "%.2f" % (median(same) / median(v))
    print(fmt % (pair, system, len(v), "%.1f" % median(v), "%.1f" % p90(v), ratio))
print()
print("ratio: median of 'mloffloadd /switch + completion' over the router row's median (same pair);")
print("below 1: mloffloadd switched faster. '/switch' alone is the time until mloffloadd says B is")
print("ready; '+ completion' adds the same one-token completion the router rows time, sent to B.")
EOF
if [ "$LEFTOVERS" != 0 ]; then
    die "some llama-server processes of this run outlived their server (see above)"
fi
