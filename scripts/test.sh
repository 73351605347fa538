#!/usr/bin/env bash
# Runs every test: installs what is missing, builds llama.cpp and installs the openai and
# puppeteer-core and @anthropic-ai/sdk npm packages (all cached), builds mloffload, runs
# the test suite, runs it again under ASan+UBSan, replays the fuzz corpora and fuzzes
# briefly. FUZZ_SECONDS (default 30) bounds the fuzzing of each harness (fuzz_gguf,
# fuzz_config, fuzz_http).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
LLAMA_ROOT="$(bash scripts/setup-llama.sh | tail -n 1)"
export MLOFFLOAD_LLAMA_DIR="$LLAMA_ROOT/llama.cpp"
export MLOFFLOAD_LLAMA_BIN="$LLAMA_ROOT/build/bin"
# the official openai npm package (pinned), the real third-party client of the endpoint
MLO_OPENAI_DIR="$(bash scripts/setup-openai.sh | tail -n 1)"
export MLO_OPENAI_DIR
# puppeteer-core (pinned), which drives Debian's chromium through the dashboard's test
MLO_PUPPETEER_DIR="$(bash scripts/setup-puppeteer.sh | tail -n 1)"
export MLO_PUPPETEER_DIR
# and the official @anthropic-ai/sdk (pinned), the client of /v1/messages
MLO_ANTHROPIC_DIR="$(bash scripts/setup-anthropic.sh | tail -n 1)"
export MLO_ANTHROPIC_DIR

echo "== banned calls" >&2
if git grep -nE '\b(sprintf|strcpy|strcat|atoi|atol|gets)\(' -- 'src/*.c' 'src/*.h' 'tests/*.c' 'fuzz/*.c'; then
    echo "banned calls found (use snprintf, length-checked copies, strtol)" >&2
    exit 1
fi

echo "== build and test (release with debug info)" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
bash scripts/build.sh
ctest --test-dir build --no-tests=error --output-on-failure -j2 | tee -a "$log"

echo "== build and test (ASan + UBSan)" >&2
BUILD_DIR=build-asan BUILD_TYPE=Debug bash scripts/build.sh -DMLO_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --no-tests=error --output-on-failure -j2 | tee -a "$log"

echo "== fuzz: replay the corpora, then fuzz ${FUZZ_SECONDS:-30} s per harness" >&2
bash fuzz/run.sh "${FUZZ_SECONDS:-30}" 2>&1 | grep -vE '^#[0-9]+' || exit 1

# one closing line over both test runs (ctest has failed the script already on a failure)
passed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$log" || true)
failed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(Failed|Timeout|Exception)' "$log" || true)
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
