#!/usr/bin/env bash
# Installs the load generator of `make bench`: h2load, from Debian's nghttp2-client package.
#
# Idempotent: does nothing when h2load already runs. Needs root (or sudo) and apt-get.
# Usage: scripts/install-bench-tools.sh
set -euo pipefail

if command -v h2load >/dev/null 2>&1 && command -v jq >/dev/null 2>&1; then
    echo "install-bench-tools: $(h2load --version | head -n 1) and $(jq --version) already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-bench-tools: no apt-get here; install h2load (nghttp2) yourself" >&2
    exit 1
fi

sudo=()
if [[ "$(id -u)" != 0 ]]; then
    sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends nghttp2-client jq >/dev/null
echo "install-bench-tools: $(h2load --version | head -n 1)"
