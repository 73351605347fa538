#!/bin/sh
# run.sh: builds fuzz_gguf with clang (library and harness instrumented, ASan+UBSan)
# in build-fuzz, replays the checked-in corpus, then fuzzes for SECONDS (default 60).
# New inputs and any crash go to a scratch folder, never into the repository; the
# folder is removed after a clean run and kept, with its path printed, after a crash.
# Usage: fuzz/run.sh [SECONDS]   (FUZZ_KEEP=1 keeps the scratch folder anyway)
set -eu
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build="$root/build-fuzz"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DMLO_FUZZ=ON >/dev/null
ninja -C "$build" fuzz_gguf
fuzz="$build/fuzz_gguf"

echo "replaying $here/corpus"
"$fuzz" "$here"/corpus/*

scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_gguf.XXXXXX")
mkdir "$scratch/corpus"
echo "fuzzing for $secs s; scratch: $scratch"
if ! "$fuzz" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$scratch/" "$scratch/corpus" "$here/corpus"; then
	echo "fuzz_gguf found a problem; inputs and artifacts kept in $scratch" >&2
	ls "$scratch" >&2
	exit 1
fi
if [ "${FUZZ_KEEP:-0}" = 1 ]; then
	echo "kept $scratch"
else
	rm -rf "$scratch"
fi
