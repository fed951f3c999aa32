#!/usr/bin/env bash
# Make sure a headless Chromium is on the PATH for the browser tests (the drift report page).
# Debian's `chromium` package: installed with apt-get when we are root; otherwise a clear message
# and a non-zero exit, and the browser tests skip naming this script.
set -euo pipefail

for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
        echo "chromium: $(command -v "$name")"
        exit 0
    fi
done

if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is not installed and this is not root: run 'sudo apt-get install -y chromium'" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is not installed and apt-get is missing: install Chromium by hand" >&2
    exit 1
fi

echo "installing chromium (Debian package) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $(command -v chromium)"
