#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test mloffload. Skips the
# package manager when everything is already there. Node.js and npm count as present
# when the commands are (a machine may carry them from outside Debian).
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev
      libcmocka-dev libjansson-dev libevent-dev libcurl4-openssl-dev libsqlite3-dev
      python3 python3-numpy wrk curl ca-certificates chromium tmux)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi
