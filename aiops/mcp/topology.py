"""The live service graph of a namespace for `get_topology`: who calls whom and how each edge is
doing now against the hour before, from both sides of the call (aiops.agent.edges reads them)."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from fastmcp.exceptions import ToolError

from aiops.agent.edges import ISTIO, EdgeProfile, edge_chart_query, gather_edges
from aiops.agent.metrics import rate_window
from aiops.agent.ports import MetricsSource
from aiops.rca import edge_health

BASELINE = timedelta(hours=1)
_EDGE = re.compile(r"^\s*([a-z0-9][-a-z0-9.]*)\s*(?:->|→)\s*([a-z0-9][-a-z0-9.]*)\s*$")


def edge_health_view(
    source: MetricsSource,
    namespace: str,
    window_s: float,
    now: datetime,
    profile: EdgeProfile = ISTIO,
) -> dict[str, Any]:
    """Per edge: calls per second, mean latency each side measured now and in the hour before,
    failures each side saw, and a verdict (ok, slower, slow network, failing, calls lost)."""
    at = now - timedelta(seconds=window_s)
    step = max(15.0, float(math.ceil(window_s / 10)))
    gathered = gather_edges(
        source, namespace, [], at - BASELINE, now, step, rate_window(step), profile=profile
    )
    health = edge_health(
        gathered.edges, at.timestamp(), window_s=window_s, level_s=BASELINE.total_seconds()
    )
    edges = [
        {
            "from": h.client,
            "to": h.server,
            "verdict": h.verdict,
            "calls_per_s": _round(h.calls_per_s),
            "client_ms": {"before": _ms(h.client_before), "now": _ms(h.client_now)},
            "server_ms": {"before": _ms(h.server_before), "now": _ms(h.server_now)},
            "client_errors": _round(h.client_errors_now),
            "server_errors": _round(h.server_errors_now),
            "query": gathered.sources.get(f"{h.client} → {h.server}"),
        }
        for h in health
    ]
    return {
        "edges": edges,
        "latency": f"mean per {step:g} s step ({profile.name}: what the caller waited vs what "
        "the callee spent); 'before' is the hour before the window",
        **({"problems": gathered.notes} if gathered.notes else {}),
    }


def parse_edge(edge: str) -> tuple[str, str]:
    m = _EDGE.match(edge)
    if m is None:
        raise ToolError(
            f"edge {edge[:80]!r} is not 'caller->callee' with Kubernetes workload names; "
            "e.g. 'frontend->cartservice' (get_topology lists the edges)"
        )
    return m.group(1), m.group(2)


def edge_chart(edge: str, namespace: str, step_s: float, profile: EdgeProfile = ISTIO) -> str:
    """The PromQL plot_metric draws for an edge: both sides' mean latency."""
    caller, callee = parse_edge(edge)
    return edge_chart_query(profile, namespace, caller, callee, rate_window(step_s), "mean")


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000.0, 3) if seconds is not None else None


def _round(x: float | None) -> float | None:
    return round(x, 4) if x is not None else None
