#!/usr/bin/env bash
# Soak test of mloffloadd: SOAK_SECONDS of mixed /v1 traffic on loopback while its
# llama-server children are killed, its configuration reloaded and its models folder
# changed under it; then checks that no request was lost, that its RSS and descriptors
# stayed flat and that no child outlived it. Run on demand: bash bench/soak.sh. Not in
# CI, not a CTest test. See bench/README.md, section "Soak".
#
# The set-up: three tiny models a, b, c (mloffload gen tiny, seeds 1-3) on a fake GPU
# (the tests' fake NVML, tests/fake_nvml.c) sized to 2.5 times one model's plan, so two
# fit and the third evicts one; mloffloadd on 127.0.0.1 with a config file. The traffic
# and the trouble come from bench/soak.py (its top says what counts as answered,
# refused, cut and lost):
#   - CLIENTS threads sending chat and text completions, streamed and not, for a, b, c
#     and the model that comes and goes; 15% of them hang up on purpose mid-way;
#   - kill -9 of one llama-server child of the daemon every ~KILL_EVERY s;
#   - SIGHUP every ~HUP_EVERY s after switching idle_ttl_s between 300 and 600;
#   - every ~SCAN_EVERY s a copy of a fourth model (extra.gguf) put into the folder or
#     removed from it, then POST /models/scan (and the daemon's own rescan every 20 s).
# Exit status 0 only when: no request lost, the daemon alive throughout and stopped with
# status 0, no orphaned child, no child left attached at rest, descriptors at rest at the
# end within FD_MARGIN of those at the start (not counting connections to exited
# children that libcurl's cache still holds, in CLOSE_WAIT: at most CLOSE_WAIT_MAX of
# those), RSS at rest at most RSS_MAX_RATIO times the start's, no sanitizer report.
#
# Knobs (environment):
#   SOAK_SECONDS    seconds of traffic with trouble (1200)
#   WARMUP_S        seconds of traffic without trouble before the baseline is read (30)
#   CLIENTS         client threads (6)
#   KILL_EVERY      mean seconds between kill -9s of a child (60; 0: none)
#   HUP_EVERY       mean seconds between SIGHUPs (45; 0: none)
#   SCAN_EVERY      mean seconds between folder changes + POST /models/scan (30; 0: none)
#   REQ_TIMEOUT     seconds a client waits for an answer before it counts as lost (300)
#   FD_MARGIN       descriptors the daemon may hold at rest at the end beyond the start,
#                   not counting its upstream sockets in CLOSE_WAIT (2)
#   CLOSE_WAIT_MAX  upstream sockets in CLOSE_WAIT it may hold at rest at the end (32):
#                   libcurl keeps a connection to a child that has gone until its next
#                   transfer prunes the dead ones (at most once a second), so a few stay
#   RSS_MAX_RATIO   end RSS over start RSS allowed (1.5; not checked in an ASan build)
#   BUILD           build folder with mloffload, mloffloadd (and fake-nvml/) (build-bench,
#                   configured Release when new); ninja runs there first. An ASan build
#                   (build-asan) also checks for leaks at the daemon's exit.
#   START_S         bound on the daemon's start and on each set-up request (120)
#   SOAK_KEEP       folder that keeps the daemon's log, its config and soak.py's result
#                   (/tmp/mlo-soak-last; the scratch folder itself is removed)
#   MLOFFLOAD_API_KEY  when set: passed to the daemon (environment) and sent by every
#                   request as "Authorization: Bearer KEY"
#   MLOFFLOAD_LLAMA_BIN, MLOFFLOAD_CACHE  as in bench/proxy.sh
set -euo pipefail

log() { printf 'soak.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SOAK_SECONDS="${SOAK_SECONDS:-1200}"
WARMUP_S="${WARMUP_S:-30}"
CLIENTS="${CLIENTS:-6}"
KILL_EVERY="${KILL_EVERY:-60}"
HUP_EVERY="${HUP_EVERY:-45}"
SCAN_EVERY="${SCAN_EVERY:-30}"
REQ_TIMEOUT="${REQ_TIMEOUT:-300}"
FD_MARGIN="${FD_MARGIN:-2}"
CLOSE_WAIT_MAX="${CLOSE_WAIT_MAX:-32}"
RSS_MAX_RATIO="${RSS_MAX_RATIO:-1.5}"
START_S="${START_S:-120}"
SOAK_KEEP="${SOAK_KEEP:-/tmp/mlo-soak-last}"
BUILD="${BUILD:-$BB}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

for v in SOAK_SECONDS WARMUP_S CLIENTS KILL_EVERY HUP_EVERY SCAN_EVERY REQ_TIMEOUT FD_MARGIN CLOSE_WAIT_MAX START_S; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
for v in SOAK_SECONDS CLIENTS REQ_TIMEOUT START_S; do
    [ "${!v}" -ge 1 ] || die "$v must be at least 1"
done
[[ "$RSS_MAX_RATIO" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "RSS_MAX_RATIO must be a number, not '$RSS_MAX_RATIO'"
need_tools curl python3 ninja pgrep cc
[ -x "$LLAMA_BIN" ] || die "no llama-server at $LLAMA_BIN: run scripts/setup-llama.sh or set MLOFFLOAD_LLAMA_BIN"
[ -d "$LLAMA/llama.cpp/models" ] || die "no llama.cpp tree at $LLAMA/llama.cpp (vocab files): run scripts/setup-llama.sh"
if [ ! -f "$BUILD/build.ninja" ]; then
    BUILD_DIR="$BUILD" BUILD_TYPE=Release bash "$ROOT/scripts/build.sh" >/dev/null 2>&1 ||
        die "cannot configure a build in $BUILD (scripts/build.sh)"
fi
HERE="$ROOT/bench"

# --- processes and the scratch folder: everything started here is stopped on exit ---
scratch_setup soak

AUTH=()
[ -z "${MLOFFLOAD_API_KEY:-}" ] || AUTH=(-H "Authorization: Bearer $MLOFFLOAD_API_KEY")
get() { curl -sf -m "$START_S" "${AUTH[@]}" "$1"; }

# --- 1. the build: brought up to date with ninja, in BUILD ---
bench_build
# An ASan build: its leak check runs when the daemon exits, and its RSS is no measure (ASan
# keeps freed memory in a quarantine of up to 256 MiB), so the RSS ratio is only reported.
SANITIZED=0
grep -q '^MLO_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null && SANITIZED=1
[ "$SANITIZED" = 0 ] || { BUILD_TYPE="$BUILD_TYPE, ASan + UBSan"; export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"; }
bench_fake_nvml
log "binaries: $MLOD ($BUILD_TYPE), fake NVML $FAKE_NVML"

# --- 2. models: a, b, c in the folder; the spare (extra) beside it, copied in and out ---
export MLOFFLOAD_LLAMA_DIR="$LLAMA/llama.cpp"
DIR="$SCRATCH/models"
mkdir -p "$DIR" "$SCRATCH/state" "$SCRATCH/spare"
for s in 1 2 3; do
    m=$(echo a b c | cut -d' ' -f"$s")
    "$MLO" gen tiny "$DIR/$m.gguf" --seed "$s" >/dev/null || die "cannot generate $m"
done
SPARE="$SCRATCH/spare/extra.gguf"
"$MLO" gen tiny "$SPARE" --seed 4 >/dev/null || die "cannot generate the spare model"
cat "$DIR"/*.gguf "$SPARE" >/dev/null # in the page cache before anyone loads them
log "models: a.gguf, b.gguf, c.gguf and the spare extra.gguf ($(du -h --apparent-size "$SPARE" | cut -f1) each)"

# --- 3. the daemon, with a config file (SIGHUP re-reads it) and the fake GPU ---
NVML_STATE="$SCRATCH/nvml.txt"
set_gpu() {
    printf 'count 1\ngpu 0 name="Fake" uuid=GPU-soak total=%s used=0 temp=40 util=0\n' "$1" >"$NVML_STATE.tmp"
    mv "$NVML_STATE.tmp" "$NVML_STATE"
}
set_gpu $((1 << 30))
CONF="$SCRATCH/mloffloadd.conf"
cat >"$CONF" <<EOF
# written by bench/soak.sh; its SIGHUPs switch idle_ttl_s between 300 and 600
[daemon]
models_dir = $DIR
llama_server = $LLAMA_BIN
nvml_lib = $FAKE_NVML
sample_interval_ms = 200
rescan_interval_s = 20
reserve = 0
idle_ttl_s = 300
[backends]
llama_server_url = http://127.0.0.1:9
ollama_url =
EOF
DLOG="$SCRATCH/mloffloadd.log"
# MLOFFLOAD_API_KEY, when set, is in the daemon's environment like FAKE_NVML_STATE
FAKE_NVML_STATE="$NVML_STATE" "$MLOD" --config "$CONF" --listen 127.0.0.1:0 \
    --state-dir "$SCRATCH/state" >"$DLOG" 2>&1 &
DPID=$!
PIDS+=("$DPID")
DPORT=
daemon_port() {
    DPORT=$(log_port "$DLOG")
    [ -n "$DPORT" ]
}
daemon_ready() { [ "$(get "http://127.0.0.1:$DPORT/v1/models" 2>/dev/null |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]))' 2>/dev/null)" = 3 ]; }
if ! wait_for "mloffloadd" "$DPID" daemon_port || ! wait_for "mloffloadd" "$DPID" daemon_ready; then
    tail -n 20 "$DLOG" >&2
    die "mloffloadd did not start or did not list the 3 models"
fi
# the fake GPU sized to 2.5 times what one model needs on it: two fit, three do not
ONE_BYTES=$(get "http://127.0.0.1:$DPORT/vram/budget?model=a" | json plan.devices.0.total_bytes)
[ "$ONE_BYTES" -gt 1000000 ] || die "the plan of a on the fake GPU is $ONE_BYTES bytes"
GPU_BYTES=$((ONE_BYTES * 5 / 2))
set_gpu "$GPU_BYTES"
gpu_sized() { [ "$(get "http://127.0.0.1:$DPORT/vram" | json devices.0.total_bytes 2>/dev/null)" = "$GPU_BYTES" ]; }
wait_for "mloffloadd" "$DPID" gpu_sized || die "mloffloadd does not see the fake GPU's new size"
[ "$(get "http://127.0.0.1:$DPORT/vram/budget?model=a" | json fits)" = True ] || die "a does not fit the fake GPU"
log "mloffloadd (pid $DPID) on port $DPORT; fake GPU of $GPU_BYTES bytes (2.5 x a's plan, $ONE_BYTES)"

# --- 4. the traffic and the trouble ---
RESULT="$SCRATCH/result.json"
T0=$SECONDS
SOAK_RC=0
python3 "$HERE/soak.py" --port "$DPORT" --pid "$DPID" --config "$CONF" --models-dir "$DIR" \
    --spare "$SPARE" --models a,b,c --extra extra --seconds "$SOAK_SECONDS" \
    --warmup "$WARMUP_S" --clients "$CLIENTS" --timeout "$REQ_TIMEOUT" \
    --kill-every "$KILL_EVERY" --hup-every "$HUP_EVERY" --scan-every "$SCAN_EVERY" \
    --out "$RESULT" || SOAK_RC=$?
WALL=$((SECONDS - T0))
if [ "$SOAK_RC" = 130 ]; then
    log "interrupted: no verdict"
    exit 130
fi
[ -s "$RESULT" ] || die "bench/soak.py wrote no result (status $SOAK_RC)"
METRICS=""
for m in mloffload_v1_requests_total mloffload_v1_answered_total mloffload_v1_refused_total \
    mloffload_v1_upstream_errors_total mloffload_v1_cancelled_total mloffload_model_loads_total; do
    METRICS="$METRICS $m=$(metric "$DPORT" "$m" 2>/dev/null || echo '?')"
done

# --- 5. the daemon stopped (SIGTERM), then its children looked for ---
ALIVE=0
if kill -0 "$DPID" 2>/dev/null; then
    ALIVE=1
    kill -TERM "$DPID"
    for ((i = 0; i < 300; i++)); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$DPID" 2>/dev/null; then
        log "mloffloadd did not stop in 30 s; SIGKILL"
        kill -KILL "$DPID"
    fi
fi
DRC=0
wait "$DPID" || DRC=$?
[ "$ALIVE" = 1 ] || DRC="dead ($DRC)"
PIDS=()
# An orphan: a llama-server the monitor saw as the daemon's child (same pid and start
# time) that is still there 5 s after the daemon, or any llama-server of this scratch
# folder. Killed afterwards (by pid) so nothing is left behind.
orphans() {
    python3 - "$RESULT" "$SCRATCH" <<'EOF'
import json, os, sys
res, scratch = json.load(open(sys.argv[1])), sys.argv[2]
left = set()
for pid, start in res.get("children_seen", []):
    try:
        s = open("/proc/%d/stat" % pid).read()
    except OSError:
        continue
    rest = s[s.rindex(")") + 2:].split()
    if s[s.index("(") + 1:s.rindex(")")] == "llama-server" and int(rest[19]) == start and rest[0] != "Z":
        left.add(pid)
for d in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open("/proc/%s/cmdline" % d, "rb").read().split(b"\0")
    except OSError:
        continue
    if cmd and cmd[0].endswith(b"llama-server") and any(scratch.encode() in a for a in cmd):
        left.add(int(d))
print(" ".join(map(str, sorted(left))))
EOF
}
for ((i = 0; i < 50; i++)); do
    ORPHANS=$(orphans)
    [ -z "$ORPHANS" ] && break
    sleep 0.1
done
for p in $ORPHANS; do kill -KILL "$p" 2>/dev/null || true; done
SANITIZER=$(grep -cE '^==[0-9]+==.*Sanitizer|: runtime error: ' "$DLOG" || true)
ERROR_LINES=$(grep -c '^mloffload: error: ' "$DLOG" || true)
mkdir -p "$SOAK_KEEP"
cp "$DLOG" "$RESULT" "$CONF" "$SOAK_KEEP/"

# --- 6. the report: plain lines, then one JSON line; the exit status ---
echo
echo "Soak of mloffloadd $COMMIT ($BUILD_TYPE build in ${BUILD#"$ROOT"/}), $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs"
echo "Load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
VERDICT=0
(CLOSE_WAIT_MAX=$CLOSE_WAIT_MAX python3 - "$RESULT" "$DRC" "$ORPHANS" "$FD_MARGIN" "$RSS_MAX_RATIO" "$SANITIZER" "$ERROR_LINES" \
    "$GPU_BYTES" "$ONE_BYTES" "$WALL" "$METRICS" "$SANITIZED" <<'EOF'
import json, os, sys
res = json.load(open(sys.argv[1]))
cw_max = int(os.environ["CLOSE_WAIT_MAX"])
drc, orphans, fd_margin, rss_max = sys.argv[2], sys.argv[3].split(), int(sys.argv[4]), float(sys.argv[5])
sanitizer, error_lines, gpu, one, wall = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8], sys.argv[9], sys.argv[10]
metrics = dict(kv.split("=", 1) for kv in sys.argv[11].split())
sanitized = sys.argv[12] == "1"
s, w = res.get("soak", {}), res.get("warmup", {})
start, end = res.get("start"), res.get("end")
cw0 = cw1 = None
print("set-up: a, b, c (tiny) on a fake GPU of %s bytes (2.5 x one plan of %s); %d clients; "
      "%s s warm-up, %s s soak (%s s of wall time in all)" % (gpu, one, res["clients"],
      res["warmup_s"], res["seconds"], wall))
print("trouble: %s" % ", ".join("%s %d" % kv for kv in sorted(res.get("trouble", {}).items())))
for name, ph in (("warm-up", w), ("soak", s)):
    if not ph:
        continue
    print("%s: requests sent %d, answered (2xx) %d, refused %d, cut by the client %d, lost %d" % (
        name, ph["sent"], ph["answered"], ph["refused"], ph["cut_by_client"], ph["lost"]))
    if ph["refused_by_code"]:
        print("  refused by code: " + ", ".join("%s %d" % kv for kv in ph["refused_by_code"].items()))
        for code, xs in ph.get("refused_samples", {}).items():
            print("    e.g. %s: %s" % (code, xs[0][:160]))
    if ph["lost"]:
        print("  lost by reason: " + ", ".join("%s %d" % kv for kv in ph["lost_by_reason"].items()))
        for x in ph["lost_samples"]:
            print("    " + x)
print("daemon counters at the end:%s" % "".join(" %s %s" % (k.replace("mloffload_", ""), v)
                                                 for k, v in metrics.items()))
fails = []
lost = s.get("lost", 0) + w.get("lost", 0)
if lost:
    fails.append("%d requests lost" % lost)
if start and end:
    ratio = end["rss_kib"] / start["rss_kib"]
    print("daemon at rest: RSS %d KiB after the warm-up, %d KiB at the end (ratio %.2f; highest "
          "%d KiB); descriptors %d and %d (highest %d)" % (start["rss_kib"], end["rss_kib"], ratio,
          res["rss_max_kib"], start["fds"], end["fds"], res["fds_max"]))
    diff = {k: end["fd_kinds"].get(k, 0) - start["fd_kinds"].get(k, 0)
            for k in set(start["fd_kinds"]) | set(end["fd_kinds"])}
    diff = {k: v for k, v in sorted(diff.items()) if v}
    if diff:
        print("  descriptors that differ (end - start): " + ", ".join("%s %+d" % kv for kv in diff.items()))
    cw0, cw1 = (x["fd_kinds"].get("tcp CLOSE_WAIT upstream", 0) for x in (start, end))
    print("  of which upstream sockets in CLOSE_WAIT (libcurl's cache): %d and %d; the rest: "
          "%d and %d" % (cw0, cw1, start["fds"] - cw0, end["fds"] - cw1))
    if end["fds"] - cw1 > start["fds"] - cw0 + fd_margin:
        fails.append("descriptors (not counting CLOSE_WAIT) grew from %d to %d" % (
            start["fds"] - cw0, end["fds"] - cw1))
    if cw1 > cw_max:
        fails.append("%d upstream sockets in CLOSE_WAIT at rest" % cw1)
    for name, at in (("after the warm-up", start), ("at the end", end)):
        if at["children"]:
            fails.append("child processes of the daemon at rest %s: %s" % (name, ", ".join(at["children"])))
    if ratio > rss_max and not sanitized:
        fails.append("RSS grew %.2f times" % ratio)
    elif ratio > rss_max:
        print("  (an ASan build: freed memory stays in ASan's quarantine, so RSS is not checked)")
else:
    fails.append("no measurement at rest: %s" % res.get("error", "the run did not finish"))
    ratio = None
if not res.get("daemon_alive") or drc.startswith("dead"):
    fails.append("the daemon died during the run")
elif drc != "0":
    fails.append("the daemon exited with status %s on SIGTERM" % drc)
print("daemon: %s during the run; exit status on SIGTERM %s; %d llama-server children seen; "
      "orphans after it stopped: %d%s" % ("alive" if res.get("daemon_alive") else "DIED", drc,
      len(res.get("children_seen", [])), len(orphans), " (" + " ".join(orphans) + ")" if orphans else ""))
if orphans:
    fails.append("%d orphaned children" % len(orphans))
print("daemon log: %d error lines, %d sanitizer reports" % (error_lines, sanitizer))
if sanitizer:
    fails.append("sanitizer reports in the daemon's log")
print("verdict: " + ("PASS" if not fails else "FAIL: " + "; ".join(fails)))
out = {"verdict": "pass" if not fails else "fail", "failures": fails, "seconds": res["seconds"],
       "clients": res["clients"], "sent": s.get("sent", 0), "answered": s.get("answered", 0),
       "refused": s.get("refused_by_code", {}), "cut_by_client": s.get("cut_by_client", 0),
       "lost": lost, "trouble": res.get("trouble", {}),
       "rss_kib": [start and start["rss_kib"], end and end["rss_kib"]],
       "rss_ratio": ratio and round(ratio, 3), "fds": [start and start["fds"], end and end["fds"]],
       "close_wait": [cw0, cw1],
       "orphans": len(orphans), "daemon_exit": drc, "sanitizer_reports": sanitizer,
       "counters": metrics}
print(json.dumps(out, separators=(",", ":")))
sys.exit(1 if fails else 0)
EOF
) || VERDICT=$?
log "the daemon's log, the config and soak.py's result are kept in $SOAK_KEEP"
exit "$VERDICT"
