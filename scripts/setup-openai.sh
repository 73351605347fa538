#!/usr/bin/env bash
# Installs the official `openai` npm package, pinned below, outside the clone: the real
# third-party client the tests drive through tests/openai_client.mjs. Prints the folder
# (MLO_OPENAI_DIR; the package is in its node_modules/openai) as its only stdout line.
# The newest major (7) is pinned: it drives chat, completions, embeddings and the
# Responses API. scripts/setup-npm.sh does the install (cached, atomic, rerun for free).
set -euo pipefail

OPENAI_VERSION=7.60.0
exec bash "$(dirname "$0")/setup-npm.sh" openai "$OPENAI_VERSION"
