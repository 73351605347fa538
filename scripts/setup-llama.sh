#!/usr/bin/env bash
# Builds a real llama.cpp (llama-server, ggml-rpc-server, llama-fit-params) from the
# source bundle shipped inside the npm package node-llama-cpp, pinned below, and caches
# it outside the clone. Prints the cache folder on its last line. Reruns are free: the
# build is skipped when the stamp matches the pinned version.
set -euo pipefail

NLC_VERSION=3.22.1
CACHE="${MLOFFLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mloffload}"
DEST="$CACHE/llama-$NLC_VERSION"
STAMP="$DEST/.built"
TARGETS=(llama-server ggml-rpc-server llama-fit-params ggml)

if [ -f "$STAMP" ] && [ -x "$DEST/build/bin/llama-server" ]; then
    echo "$DEST"
    exit 0
fi

mkdir -p "$DEST"
work="$DEST/pkg"
rm -rf "$work" && mkdir -p "$work"
( cd "$work" && npm pack --silent "node-llama-cpp@$NLC_VERSION" >/dev/null && tar xzf node-llama-cpp-*.tgz )
rm -rf "$DEST/llama.cpp"
git clone -q "$work/package/llama/gitRelease.bundle" "$DEST/llama.cpp"
rm -rf "$work"

cmake -S "$DEST/llama.cpp" -B "$DEST/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_RPC=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DGGML_NATIVE=ON >&2
cmake --build "$DEST/build" --target "${TARGETS[@]}" -j"$(nproc)" >&2
touch "$STAMP"
echo "$DEST"
