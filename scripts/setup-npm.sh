#!/usr/bin/env bash
# Installs one npm package at a pinned version outside the clone, for the tests that drive
# a real third-party client (scripts/setup-openai.sh and scripts/setup-anthropic.sh call
# it): setup-npm.sh PACKAGE VERSION. The folder is $CACHE/<package, "@" dropped and "/"
# as "-">-VERSION, the package in its node_modules; it is printed as the only stdout line.
# Reruns are free: nothing is done when the pinned version is already there. The install
# goes to a temporary folder beside it that is renamed into place when complete, so an
# interrupted install is never taken for a finished one.
set -euo pipefail

PKG="${1:?usage: setup-npm.sh PACKAGE VERSION}"
VERSION="${2:?usage: setup-npm.sh PACKAGE VERSION}"
LABEL="$(printf '%s' "$PKG" | tr -d '@' | tr '/' '-')"
CACHE="${MLOFFLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mloffload}"
DEST="$CACHE/$LABEL-$VERSION"

# complete: the renamed folder holds the pinned version's package.json
installed() {
    [ -f "$1/.installed" ] &&
        grep -q "\"version\": *\"$VERSION\"" "$1/node_modules/$PKG/package.json" 2>/dev/null
}

if installed "$DEST"; then
    echo "$DEST"
    exit 0
fi

for tool in node npm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "setup-npm: $tool not found (scripts/deps.sh installs it)" >&2; exit 1; }
done

mkdir -p "$CACHE"
# leftovers of installs killed an hour ago or more (a running one is younger)
find "$CACHE" -maxdepth 1 -name ".$LABEL-*.tmp*" -mmin +60 -exec rm -rf {} + 2>/dev/null || true
tmp="$(mktemp -d "$CACHE/.$LABEL-$VERSION.tmpXXXXXX")"
chmod 755 "$tmp"
npm_pid=""
# on any exit the temporary folder goes, and an npm still running is stopped first
cleanup() {
    if [ -n "$npm_pid" ]; then kill "$npm_pid" 2>/dev/null || true; wait "$npm_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

echo "setup-npm: installing $PKG@$VERSION" >&2
printf '{\n  "name": "mloffload-%s-client",\n  "private": true\n}\n' "$LABEL" > "$tmp/package.json"
# in the background, so that a signal to this script is acted on at once
npm install --prefix "$tmp" --no-audit --no-fund --no-update-notifier --ignore-scripts \
    --save-exact --loglevel=error "$PKG@$VERSION" >/dev/null &
npm_pid=$!
wait "$npm_pid"
npm_pid=""
touch "$tmp/.installed"
installed "$tmp" || { echo "setup-npm: $PKG@$VERSION missing after npm install" >&2; exit 1; }
# it must load in this node before it counts as installed
node -e 'require(process.argv[1] + "/node_modules/" + process.argv[2])' "$tmp" "$PKG" >&2 ||
    { echo "setup-npm: $PKG@$VERSION does not load in node $(node --version)" >&2; exit 1; }

# a folder there that is not a complete install (made by hand, an older layout) goes;
# if another run renamed its complete install into place meanwhile, that one is kept
if [ -e "$DEST" ] && ! installed "$DEST"; then
    rm -rf "$DEST"
fi
if ! mv -T "$tmp" "$DEST" 2>/dev/null && ! installed "$DEST"; then
    echo "setup-npm: could not move the install to $DEST" >&2
    exit 1
fi
echo "$DEST"
