#!/usr/bin/env bash
# The main job on its defaults: installs what is missing, builds, generates demo models
# into the default models folder (~/.local/share/mloffload/models: a tiny model that
# llama-server runs, a tiny embedding model, and a Llama-3.1-8B-shaped Q4_K_M file that is sparse, costing no
# disk) and runs mloffloadd in the foreground on 127.0.0.1:9000. Try, from another shell:
#   curl 127.0.0.1:9000/status      build/mloffload models      build/mloffload vram
#   curl 127.0.0.1:9000/v1/chat/completions -d '{"model":"tiny-f32","messages":[]}'
#   open http://127.0.0.1:9000/ui/ (the dashboard), or build/mloffload run tiny-f32
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
LLAMA_ROOT="$(bash scripts/setup-llama.sh | tail -n 1)"
export MLOFFLOAD_LLAMA_DIR="$LLAMA_ROOT/llama.cpp"
bash scripts/build.sh >/dev/null
models="${XDG_DATA_HOME:-$HOME/.local/share}/mloffload/models"
mkdir -p "$models"
[ -f "$models/tiny-F32.gguf" ] || build/mloffload gen tiny "$models/tiny-F32.gguf"
[ -f "$models/tiny-embed-F32.gguf" ] || build/mloffload gen tiny-embed "$models/tiny-embed-F32.gguf"
[ -f "$models/llama3-8b-Q4_K_M.gguf" ] || build/mloffload gen llama3-8b "$models/llama3-8b-Q4_K_M.gguf"
echo "demo models in $models; mloffloadd on http://127.0.0.1:9000 (Ctrl-C stops it)" >&2
echo "dashboard: http://127.0.0.1:9000/ui/   terminal: build/mloffload ps | load | run tiny-f32" >&2
exec build/mloffloadd --llama-server "$LLAMA_ROOT/build/bin/llama-server" "$@"
