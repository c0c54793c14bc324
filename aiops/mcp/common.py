"""What every read tool shares: its annotations, the backends from the server's lifespan, the
argument checks, and Prometheus errors in words a person can act on."""

from __future__ import annotations

import re

from fastmcp.dependencies import Depends
from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_context
from mcp.types import ToolAnnotations

from aiops.integrations.prometheus import PrometheusError, RangeQuery, Series
from aiops.mcp import guard
from aiops.mcp.backends import Backends

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
TAGS = {"investigate"}
LIFESPAN_KEY = "backends"
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _backends() -> Backends:
    found = get_context().lifespan_context.get(LIFESPAN_KEY)
    if not isinstance(found, Backends):
        raise ToolError("the server is still starting; retry in a moment")
    return found


# A tool parameter `b: Backends = BACKENDS` receives the server's backends (not in its schema).
BACKENDS: Backends = Depends(_backends)


def k8s_name(value: str, what: str) -> str:
    value = value.strip()
    if not _K8S_NAME.fullmatch(value):
        raise ToolError(
            f"{what} {value[:80]!r} is not a Kubernetes name (lower-case letters, "
            "digits, '-' and '.'); e.g. 'boutique' or 'cartservice'"
        )
    return value


def bounded(value: int, name: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ToolError(f"{name} must be between {low} and {high}; got {value}")
    return value


def prom_query(b: Backends, q: RangeQuery) -> list[Series]:
    """One bounded query (series, bytes, time; see guard.limits) or a ToolError."""
    try:
        return b.prometheus().fetch(q, guard.limits())
    except PrometheusError as exc:
        raise ToolError(prom_message(str(exc), q.promql)) from exc


def prom_message(raw: str, promql: str) -> str:
    marker = f"refused the query {promql!r}: "
    if marker in raw:
        why = raw.split(marker, 1)[1]
        return (
            f"Prometheus rejected the PromQL: {why[:400]}; fix the expression "
            "(https://prometheus.io/docs/prometheus/latest/querying/basics/)"
        )
    if "did not answer within" in raw:
        return (
            "the query took longer than the time limit; narrow the range, raise the step "
            "or aggregate (sum by ...)"
        )
    return raw
