#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine with Python 3.11 (as root, or with sudo) for aiops:
# uv, the locked Python dependencies, and Prometheus from the distribution's packages.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null || {
  echo "bootstrap: aiops needs Python 3.11 as python3 (found: $(python3 --version 2>&1))" >&2
  exit 1
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

if ! python3 -m uv --version >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then apt_install python3-pip; fi
  python3 -m pip install -q uv 2>/dev/null \
    || python3 -m pip install -q --break-system-packages uv
fi

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus
  # The package may start a system-wide Prometheus on :9090; aiops starts its own.
  (as_root systemctl disable --now prometheus >/dev/null 2>&1 || true)
fi

if ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
# The MCP Inspector (npm) that the MCP tests drive over stdio and HTTP.
if [ ! -d tests/mcp/inspector/node_modules ]; then
  npm ci --prefix tests/mcp/inspector --no-audit --no-fund --loglevel=error >/dev/null
fi

python3 -m uv sync --locked --quiet
echo "bootstrap: ready (uv $(python3 -m uv --version | cut -d' ' -f2), $(prometheus --version 2>&1 | head -1 | cut -d' ' -f1-3))"
