# syntax=docker/dockerfile:1
# The aiops image: the `aiops` command and nothing else (no Temporal server, no lab, no compilers,
# no package manager, no shell), running as a non-root user. Every long-running process is
# `aiops <command>`: worker, webhook, mcp, slack serve.
#
#   docker build -t aiops:0.1.0 .
#
# Where Docker Hub and gcr.io are unreachable, deploy/image/build.sh builds the same file on base
# images made from Debian's packages (--build-arg BUILDER_IMAGE / RUNTIME_IMAGE); its runtime base
# has no package manager either, but keeps Debian's minimal shell tools.
ARG BUILDER_IMAGE=docker.io/library/debian:bookworm-slim
# Debian 12's Python 3.11 without shell or package manager, user 65532.
ARG RUNTIME_IMAGE=gcr.io/distroless/python3-debian12:nonroot

FROM ${BUILDER_IMAGE} AS build
# Behind a TLS-inspecting proxy, pass its CA bundle (mounted at build time) so pip and uv trust
# it; unset, the system's certificates are used.
ARG SSL_CERT_FILE
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 python3-venv python3-pip ca-certificates binutils \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m pip install --break-system-packages --no-cache-dir \
      ${SSL_CERT_FILE:+--cert "$SSL_CERT_FILE"} uv==0.13.9
# The venv must use the interpreter at the path the runtime image has (/usr/bin/python3.11).
ENV UV_PROJECT_ENVIRONMENT=/opt/aiops \
    UV_PYTHON=/usr/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy
WORKDIR /src
# Dependencies first, from the lock file only: this layer survives code changes.
COPY pyproject.toml uv.lock README.md ./
COPY lab/pyproject.toml lab/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-workspace --no-editable
COPY aiops aiops
COPY workflows workflows
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable \
 && mkdir -p /state
# Size (the kubernetes client alone is 120 MB of sources and bytecode): the libraries ship as
# bytecode only (compiled beside where the sources were, so they import without them; their
# tracebacks give file and line, not the line's text), aiops keeps its sources next to their
# bytecode; debug symbols and the Rust sources some wheels carry go (numpy's vendored libraries
# excepted: auditwheel patched them and they must stay as they are).
ARG SITE=/opt/aiops/lib/python3.11/site-packages
RUN python3 -m compileall -b -q -j 0 "$SITE" \
 && find "$SITE" -name '*.py' -not -path "$SITE/aiops/*" -not -path "$SITE/workflows/*" -delete \
 && find "$SITE/aiops" "$SITE/workflows" -name '*.pyc' -delete \
 && python3 -m compileall -q -j 0 "$SITE/aiops" "$SITE/workflows" \
 && find /opt/aiops -name '*.so' -not -path '*.libs/*' -exec strip --strip-unneeded {} + \
 && find /opt/aiops -name '*.rs' -delete

FROM ${RUNTIME_IMAGE}
COPY --from=build /opt/aiops /opt/aiops
COPY --from=build --chown=65532:65532 /state /var/lib/aiops
COPY playbooks /etc/aiops/playbooks
COPY policies/default.yaml /etc/aiops/policies/default.yaml
ENV PATH=/opt/aiops/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    FASTMCP_CHECK_FOR_UPDATES=off \
    AIOPS_PLAYBOOKS_DIR=/etc/aiops/playbooks \
    AIOPS_POLICIES_DIR=/etc/aiops/policies \
    AIOPS_STATE_DIR=/var/lib/aiops \
    AIOPS_LOG__FORMAT=json
USER 65532:65532
WORKDIR /var/lib/aiops
ENTRYPOINT ["/opt/aiops/bin/aiops"]
CMD ["--help"]
