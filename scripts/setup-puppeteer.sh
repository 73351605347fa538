#!/usr/bin/env bash
# Installs the `puppeteer-core` npm package, pinned below, outside the clone: it drives
# Debian's chromium (apt, scripts/deps.sh) through tests/ui_browser.mjs, the dashboard's
# test. puppeteer-core downloads no browser. Prints the folder (MLO_PUPPETEER_DIR; the
# package is in its node_modules/puppeteer-core) as its only stdout line.
# scripts/setup-npm.sh does the install (cached, atomic, rerun for free).
set -euo pipefail

PUPPETEER_VERSION=25.19.0
exec bash "$(dirname "$0")/setup-npm.sh" puppeteer-core "$PUPPETEER_VERSION"
