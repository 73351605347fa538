#!/bin/sh
# run.sh: builds the libFuzzer harnesses with clang (library and harness instrumented,
# ASan+UBSan) in build-fuzz, and for each one replays its checked-in corpus, then fuzzes
# it for SECONDS (default 60). A harness fuzz/fuzz_NAME.c has its seeds in
# fuzz/corpus-NAME (fuzz_gguf's are in fuzz/corpus). New inputs and any crash go to a
# scratch folder, never into the repository; the folder is removed after a clean run
# and kept, with its path printed, after a crash.
# Usage: fuzz/run.sh [SECONDS [NAME...]]   (default: every harness; FUZZ_KEEP=1 keeps
# the scratch folders anyway)
set -eu
secs=${1:-60}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build="$root/build-fuzz"
names=${*:-"gguf config http"}

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DMLO_FUZZ=ON >/dev/null
for name in $names; do
	ninja -C "$build" "fuzz_$name"
done

for name in $names; do
	fuzz="$build/fuzz_$name"
	corpus="$here/corpus-$name"
	[ "$name" = gguf ] && corpus="$here/corpus"
	echo "replaying $corpus"
	"$fuzz" "$corpus"/*

	scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_$name.XXXXXX")
	mkdir "$scratch/corpus"
	echo "fuzzing fuzz_$name for $secs s; scratch: $scratch"
	if ! "$fuzz" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
	    -print_final_stats=1 -artifact_prefix="$scratch/" "$scratch/corpus" "$corpus"; then
		echo "fuzz_$name found a problem; inputs and artifacts kept in $scratch" >&2
		ls "$scratch" >&2
		exit 1
	fi
	if [ "${FUZZ_KEEP:-0}" = 1 ]; then
		echo "kept $scratch"
	else
		rm -rf "$scratch"
	fi
done
