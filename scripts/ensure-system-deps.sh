#!/usr/bin/env bash
# Installs what selflow needs from outside PyPI: graphviz's `dot`, which `selflow plot` runs to
# render images. Does nothing when `dot` is already on PATH; needs root (or sudo) otherwise.
set -euo pipefail

if command -v dot >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: 'dot' is missing and apt-get is not available; install graphviz with your package manager" >&2
    exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "error: 'dot' is missing; run 'apt-get install graphviz' as root" >&2
        exit 1
    fi
    sudo=(sudo)
fi

echo "Installing graphviz (for 'dot')..." >&2
"${sudo[@]}" apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq graphviz >/dev/null
command -v dot >/dev/null 2>&1
