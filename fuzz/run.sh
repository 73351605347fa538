#!/bin/sh
# run.sh: builds the libFuzzer harnesses with clang (library and harness instrumented,
# ASan+UBSan) in build-fuzz, and for each one replays its checked-in corpus, then fuzzes
# for SECONDS (default 60): fuzz_gguf (GGUF reader, fuzz/corpus) and fuzz_http (the
# daemon's request front, fuzz/corpus-http). New inputs and any crash go to a scratch
# folder, never into the repository; the folder is removed after a clean run and kept,
# with its path printed, after a crash.
# Usage: fuzz/run.sh [SECONDS]   (FUZZ_KEEP=1 keeps the scratch folders anyway)
set -eu
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build="$root/build-fuzz"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DMLO_FUZZ=ON >/dev/null
ninja -C "$build" fuzz_gguf fuzz_http

# run NAME CORPUS MAX_LEN
run() {
	fuzz="$build/$1"
	echo "replaying $2"
	"$fuzz" "$2"/*
	scratch=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	mkdir "$scratch/corpus"
	echo "$1: fuzzing for $secs s; scratch: $scratch"
	if ! "$fuzz" -max_total_time="$secs" -max_len="$3" -rss_limit_mb=2048 -timeout=10 \
	    -print_final_stats=1 -artifact_prefix="$scratch/" "$scratch/corpus" "$2"; then
		echo "$1 found a problem; inputs and artifacts kept in $scratch" >&2
		ls "$scratch" >&2
		exit 1
	fi
	if [ "${FUZZ_KEEP:-0}" = 1 ]; then
		echo "kept $scratch"
	else
		rm -rf "$scratch"
	fi
}
run fuzz_gguf "$here/corpus" 65536
run fuzz_http "$here/corpus-http" 16384
