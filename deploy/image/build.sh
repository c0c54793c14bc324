#!/usr/bin/env bash
# Builds the aiops image from the repository's Dockerfile with podman, on base images made here
# from Debian's packages (mmdebstrap), for machines that reach Debian and PyPI but no container
# registry. Elsewhere a plain `docker build -t aiops:<version> .` does the same.
#
#   deploy/image/build.sh [TAG]        # default: aiops:<version in pyproject.toml>
#
# Needs (Debian): mmdebstrap podman runc. Where the machine lacks CAP_SYS_RESOURCE, podman's
# default rlimits cannot be set and crun refuses hybrid cgroups: the build and every run here use
# runc and explicit --ulimit values (RUN_FLAGS below, also what deploy/image/run.sh uses).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=deploy/image
version="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)"
tag="${1:-localhost/aiops:$version}"
builder=localhost/aiops-base/builder:bookworm
runtime=localhost/aiops-base/python3-runtime:bookworm
work="${AIOPS_IMAGE_WORK:-/tmp/aiops-image}"
mkdir -p "$work"

for tool in mmdebstrap podman runc; do
  command -v "$tool" >/dev/null || { echo "build.sh: needs $tool (apt-get install mmdebstrap podman runc)" >&2; exit 1; }
done

# The builder base: Debian 12 with apt (the Dockerfile's build stage installs what it needs).
if ! podman image exists "$builder"; then
  mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$work/builder.tar"
  podman import --quiet "$work/builder.tar" "$builder" >/dev/null
fi
# The runtime base, close to gcr.io/distroless/python3-debian12:nonroot: Debian 12's python3 and
# CA certificates, user nonroot (65532), and no package manager (apt, dpkg and perl removed).
if ! podman image exists "$runtime"; then
  rm -rf "$work/runtime"
  mmdebstrap --quiet --variant=minbase --include=python3-minimal,libpython3.11-stdlib,ca-certificates \
    bookworm "$work/runtime"
  (
    cd "$work/runtime"
    # Package managers and what only they use (apt, dpkg, debconf's perl), documentation.
    rm -rf usr/bin/apt* usr/bin/dpkg* usr/lib/apt usr/lib/dpkg var/lib/apt var/cache/apt \
      var/cache/debconf var/lib/dpkg etc/apt etc/dpkg usr/share/doc usr/share/man usr/share/info \
      usr/share/locale usr/share/lintian usr/share/bash-completion var/log/* \
      usr/bin/perl* usr/share/perl usr/share/perl5 usr/lib/x86_64-linux-gnu/perl* \
      usr/lib/x86_64-linux-gnu/libperl* usr/lib/x86_64-linux-gnu/libapt* \
      usr/lib/x86_64-linux-gnu/gconv
    echo "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" >>etc/passwd
    echo "nonroot:x:65532:" >>etc/group
    mkdir -p home/nonroot && chown 65532:65532 home/nonroot
  )
  tar -C "$work/runtime" -cf "$work/runtime.tar" .
  podman import --quiet "$work/runtime.tar" "$runtime" >/dev/null
fi

# shellcheck source=deploy/image/podman-flags.sh
source "$here/podman-flags.sh"
# This machine's CA bundle goes in at build time only (a proxy may inspect TLS to PyPI).
ca_bundle="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
podman build "${PODMAN_FLAGS[@]}" --network host \
  --volume "$ca_bundle:/run/build-ca.crt:ro" --build-arg SSL_CERT_FILE=/run/build-ca.crt \
  --build-arg BUILDER_IMAGE="$builder" --build-arg RUNTIME_IMAGE="$runtime" \
  -t "$tag" -f Dockerfile .
size="$(podman image inspect "$tag" --format '{{.Size}}')"
echo "build.sh: built $tag ($((size / 1000000)) MB)"
