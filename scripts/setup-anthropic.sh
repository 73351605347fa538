#!/usr/bin/env bash
# Installs the official `@anthropic-ai/sdk` npm package, pinned below, outside the clone:
# the real third-party client of the Messages API that tests/anthropic_client.mjs drives.
# Prints the folder (MLO_ANTHROPIC_DIR; the package is in its node_modules/@anthropic-ai/sdk)
# as its only stdout line. scripts/setup-npm.sh does the install (cached, atomic).
set -euo pipefail

ANTHROPIC_VERSION=1.17.0
exec bash "$(dirname "$0")/setup-npm.sh" @anthropic-ai/sdk "$ANTHROPIC_VERSION"
