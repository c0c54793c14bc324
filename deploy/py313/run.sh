#!/usr/bin/env bash
# The test suite's pure and Temporal-backed parts on Python 3.13, in a Debian 13 (trixie)
# container: Debian 12 and PyPI offer no 3.13 interpreter to this machine, trixie's python3.13
# does. The locked dependencies install from the same uv.lock (requires-python >=3.11,<3.14).
#
#   deploy/py313/run.sh [PYTEST ARGS...]      # default: the subset below
#
# Needs mmdebstrap, podman and runc (Debian packages); the image is built once and reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$(pwd)"
image=localhost/aiops-py313/trixie:latest
work="${AIOPS_IMAGE_WORK:-/tmp/aiops-image}"
mkdir -p "$work"
for tool in mmdebstrap podman runc; do
  command -v "$tool" >/dev/null || { echo "py313: needs $tool (apt-get install mmdebstrap podman runc)" >&2; exit 1; }
done
if ! podman image exists "$image"; then
  mmdebstrap --quiet --variant=minbase \
    --include=python3.13,python3.13-venv,python3-pip,ca-certificates,prometheus,git \
    trixie "$work/py313.tar"
  podman import --quiet "$work/py313.tar" "$image" >/dev/null
fi
# shellcheck source=deploy/image/podman-flags.sh
source deploy/image/podman-flags.sh
ca_bundle="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
if [ "$#" -eq 0 ]; then
  set -- tests/telemetry tests/policy tests/playbooks tests/detect tests/rca tests/workflows \
    tests/deploy/test_manifests.py tests/deploy/test_compose.py -q -p no:cacheprovider
fi
podman run --rm "${PODMAN_FLAGS[@]}" --network host \
  --volume "$repo:/src:ro" --volume "$ca_bundle:/run/host-ca.crt:ro" \
  --volume "$work/py313-uv-cache:/root/.cache/uv" \
  --env SSL_CERT_FILE=/run/host-ca.crt --env PIP_CERT=/run/host-ca.crt \
  --env UV_PROJECT_ENVIRONMENT=/opt/venv --env UV_PYTHON=/usr/bin/python3.13 \
  --env UV_PYTHON_DOWNLOADS=never --env UV_LINK_MODE=copy \
  --env FASTMCP_CHECK_FOR_UPDATES=off --env AIOPS_DATASETS=/nonexistent \
  "$image" bash -euc '
    python3.13 -m pip install --quiet --break-system-packages uv==0.13.9
    mkdir -p /work
    # The repository is mounted read-only; tests write beside it, so they run from a copy.
    tar -C /src --exclude=./.venv --exclude=./.state --exclude=node_modules -cf - . | tar -C /work -xf -
    cd /work
    python3.13 -m uv sync --locked --quiet --no-default-groups --group test
    python3.13 --version
    exec python3.13 -m uv run --locked --no-default-groups --group test pytest "$@"
  ' py313 "$@"
