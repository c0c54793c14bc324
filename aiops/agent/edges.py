"""The service graph's edges from Prometheus: per caller → callee, what each side measured.

Bounded: only edges into the incident's flagged services and their neighbours (the services they
call and are called by), so a namespace of hundreds of services costs a few dozen series. Metric
and label names live in one `EdgeProfile` per source, read from the metric profile that declares
it (the `edges:` section of aiops/profiles/builtin/*.yaml), so other meshes and tracing pipelines
are one profile away: Istio (`reporter="source"` is the caller's proxy, `"destination"` the
callee's), Linkerd (the callers' outbound side) and OpenTelemetry's servicegraph connector
(`..._client_seconds` / `..._server_seconds`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from aiops.agent.ports import MetricsSource, SeriesLike
from aiops.profiles import builtin_assembly
from aiops.profiles.models import EdgeSource
from aiops.rca import EdgeSeries


@dataclass(frozen=True)
class EdgeProfile:
    """Where one source keeps the edges: metric names and the matchers that pick a side.

    Latency histograms are named by their base name (`_sum`, `_count` and `_bucket` are
    appended); a `..._matchers` string holds extra label matchers (`reporter="source"`)."""

    name: str
    caller: str  # label naming the calling workload
    callee: str
    client_histogram: str  # what the caller waited
    client_matchers: str
    server_histogram: str  # what the callee spent
    server_matchers: str
    requests: str  # call counter
    client_requests: str  # matchers: calls as the caller saw them
    client_failed: str  # matchers: failed calls as the caller saw them
    server_requests: str
    server_failed: str
    namespace: str | None  # label of the callee's namespace; None: the source has none
    to_seconds: float = 1.0
    failed_counter: str | None = None  # a separate failed-calls counter (servicegraph)

    @classmethod
    def from_source(cls, src: EdgeSource) -> EdgeProfile:
        """The service graph a metric profile declares (its `edges:` section)."""
        return cls(**src.model_dump(exclude={"needs"}))


def shipped(name: str) -> EdgeProfile:
    """A shipped metric profile's service graph, by its name (istio, otel-servicegraph, ...)."""
    found = [e for e in builtin_assembly().edges if e.name == name]
    if not found:
        raise KeyError(f"no shipped profile has a service graph named {name!r}")
    return EdgeProfile.from_source(found[0])


# The names live in the profiles (aiops/profiles/builtin): Istio's sidecars, the OpenTelemetry
# collector's servicegraph connector.
ISTIO = shipped("istio")
OTEL_SERVICEGRAPH = shipped("otel-servicegraph")


@dataclass
class GatheredEdges:
    edges: list[EdgeSeries]
    sources: dict[str, str]  # "caller → callee" -> the PromQL of its client latency
    notes: list[str] = field(default_factory=list)


def neighbourhood(
    flagged: Collection[str], call_graph: Iterable[tuple[str, str]], limit: int = 40
) -> list[str]:
    """The flagged services and the services they call or are called by (at most `limit`; the
    flagged first). Empty when nothing is flagged: then the whole namespace is read."""
    graph = list(call_graph)
    near = set(flagged)
    for caller, callee in graph:
        if caller in flagged:
            near.add(callee)
        if callee in flagged:
            near.add(caller)
    return (sorted(flagged) + sorted(near - set(flagged)))[:limit]


def _q(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _selector(profile: EdgeProfile, namespace: str, **labels: str) -> str:
    """Label matchers: the namespace (when the source has it) and `label=value` (a value
    starting with `~` is a regex)."""
    matchers = [f'{profile.namespace}="{_q(namespace)}"'] if profile.namespace else []
    for label, value in labels.items():
        op, value = ("=~", value[1:]) if value.startswith("~") else ("=", value)
        matchers.append(f'{label}{op}"{_q(value)}"')
    return ", ".join(matchers)


def _join(*matchers: str) -> str:
    return ", ".join(m for m in matchers if m)


def _latency(histogram: str, matchers: str, by: str, window: str, statistic: str) -> str:
    """The mean (sum over count: exact, no bucket interpolation, so a fixed delay moves it by
    exactly the delay) or a quantile (`p50`, `p99`) of a latency histogram per `by`."""
    if statistic == "mean":
        grouping = f" by ({by})" if by else ""
        return (
            f"sum{grouping} (rate({histogram}_sum{{{matchers}}}[{window}])) / "
            f"sum{grouping} (rate({histogram}_count{{{matchers}}}[{window}]))"
        )
    q = float(statistic.lstrip("p")) / 100
    return (
        f"histogram_quantile({q:g}, sum by ({_join('le', by)}) "
        f"(rate({histogram}_bucket{{{matchers}}}[{window}])))"
    )


def queries(
    profile: EdgeProfile, namespace: str, callees: Sequence[str], window: str, statistic: str
) -> dict[str, str]:
    """kind -> PromQL, one series per caller → callee edge."""
    only = {profile.callee: "~" + "|".join(_regex(c) for c in callees)} if callees else {}
    sel = _selector(profile, namespace, **only)
    by = f"{profile.caller}, {profile.callee}"

    def rate(metric: str, matchers: str) -> str:
        return f"sum by ({by}) (rate({metric}{{{_join(matchers, sel)}}}[{window}]))"

    failed = profile.failed_counter or profile.requests
    return {
        "client": _latency(
            profile.client_histogram, _join(profile.client_matchers, sel), by, window, statistic
        ),
        "server": _latency(
            profile.server_histogram, _join(profile.server_matchers, sel), by, window, statistic
        ),
        "calls": rate(profile.requests, profile.client_requests),
        "client_failures": rate(failed, profile.client_failed),
        "server_failures": rate(failed, profile.server_failed),
        "server_calls": rate(profile.requests, profile.server_requests),
    }


def edge_query(
    profile: EdgeProfile,
    namespace: str,
    caller: str,
    callee: str,
    window: str,
    statistic: str,
    side: Literal["client", "server"] = "client",
) -> str:
    """What the caller waited (or the callee spent) on one edge: what a piece of evidence
    cites and what a chart of the edge draws."""
    sel = _selector(profile, namespace, **{profile.caller: caller, profile.callee: callee})
    histogram, matchers = (
        (profile.client_histogram, profile.client_matchers)
        if side == "client"
        else (profile.server_histogram, profile.server_matchers)
    )
    return _latency(histogram, _join(matchers, sel), "", window, statistic)


def edge_chart_query(
    profile: EdgeProfile, namespace: str, caller: str, callee: str, window: str, statistic: str
) -> str:
    """Both sides of one edge as two series labelled side="client" / side="server"."""
    return " or ".join(
        f"label_replace({edge_query(profile, namespace, caller, callee, window, statistic, side)}"
        f', "side", "{side}", "", "")'
        for side in ("client", "server")
    )


def _regex(name: str) -> str:
    """A workload name as a literal inside a PromQL regex (RE2)."""
    return re.escape(name)


def gather_edges(
    source: MetricsSource,
    namespace: str,
    callees: Sequence[str],
    start: datetime,
    end: datetime,
    step_s: float,
    window: str,
    *,
    profile: EdgeProfile = ISTIO,
    statistic: str = "mean",
) -> GatheredEdges:
    """The edges into `callees` (every edge of the namespace when empty), aligned on the step;
    `statistic` is the latency each side reports per step: "mean" or a quantile ("p50")."""
    plan = queries(profile, namespace, callees, window, statistic)
    step: float = int(step_s) if float(step_s).is_integer() else step_s
    results: dict[str, Sequence[SeriesLike]] = {}
    notes: list[str] = []
    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        futures = {k: pool.submit(source.query_range, q, start, end, step) for k, q in plan.items()}
        for kind, future in futures.items():
            try:
                results[kind] = future.result()
            except Exception as exc:
                why = str(exc)[:300]
                notes.append(f"query for the service graph's {kind} failed ({why})")
                results[kind] = []
    n = math.floor((end.timestamp() - start.timestamp()) / step_s + 1e-9) + 1
    times = start.timestamp() + step_s * np.arange(n, dtype=np.float64)
    per_edge: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for kind, series in results.items():
        for s in series:
            caller, callee = s.labels.get(profile.caller, ""), s.labels.get(profile.callee, "")
            if not caller or not callee or caller == callee or "unknown" in (caller, callee):
                continue
            per_edge.setdefault((caller, callee), {})[kind] = _aligned(s, times, step_s)
    edges = []
    sources = {}
    for (caller, callee), arrays in sorted(per_edge.items()):
        if "client" not in arrays or "calls" not in arrays:
            continue
        nan = np.full(n, np.nan)
        client = arrays["client"] * profile.to_seconds
        server = arrays.get("server", nan) * profile.to_seconds
        edges.append(
            EdgeSeries(
                client=caller,
                server=callee,
                times=times,
                calls=arrays["calls"],
                client_latency=client,
                server_latency=server,
                client_errors=_ratio(arrays.get("client_failures"), arrays["calls"]),
                server_errors=_ratio(arrays.get("server_failures"), arrays.get("server_calls")),
                statistic=statistic,
            )
        )
        sources[f"{caller} → {callee}"] = edge_query(
            profile, namespace, caller, callee, window, statistic
        )
    if not edges and not notes:
        notes.append(f"no service graph ({profile.name}) found for namespace {namespace!r}")
    return GatheredEdges(edges, sources, notes)


def _aligned(s: SeriesLike, times: np.ndarray, step_s: float) -> np.ndarray:
    out = np.full(times.size, np.nan)
    t0 = float(times[0])
    for ts, v in zip(s.timestamps, s.values, strict=False):
        i = round((ts - t0) / step_s)
        if 0 <= i < times.size:
            out[i] = v
    return out


def _ratio(failed: np.ndarray | None, calls: np.ndarray | None) -> np.ndarray | None:
    """Failed share of calls; a bin with calls and no failure series is 0, not missing."""
    if calls is None:
        return None
    with np.errstate(all="ignore"):
        failures = np.where(np.isfinite(failed), failed, 0.0) if failed is not None else 0.0
        return np.where(calls > 0, failures / calls, np.nan)
