#!/usr/bin/env bash
# The main job on its defaults: installs what is missing, builds, generates a demo model
# (a Llama-3.1-8B-shaped Q4_K_M file, sparse, costing no disk) and shows what it needs
# and how it would be offloaded to a 6 GB GPU with an 8k context.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
LLAMA_ROOT="$(bash scripts/setup-llama.sh | tail -n 1)"
export MLOFFLOAD_LLAMA_DIR="$LLAMA_ROOT/llama.cpp"
bash scripts/build.sh >/dev/null
demo="${MLOFFLOAD_DEMO_DIR:-$HOME/.cache/mloffload/demo}"
mkdir -p "$demo"
[ -f "$demo/llama3-8b-Q4_K_M.gguf" ] || build/mloffload gen llama3-8b "$demo/llama3-8b-Q4_K_M.gguf"
build/mloffload inspect "$demo/llama3-8b-Q4_K_M.gguf"
echo
build/mloffload plan "$demo/llama3-8b-Q4_K_M.gguf" --vram "${VRAM:-6G}" --ctx "${CTX:-8192}"
