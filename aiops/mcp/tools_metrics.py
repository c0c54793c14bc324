"""Read tools over Prometheus: PromQL, a service's golden signals, the call graph, a chart."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.tools import ToolResult
from fastmcp.utilities.types import Image
from mcp.types import TextContent

from aiops.charts import Line, NothingToDrawError, line_chart
from aiops.integrations.prometheus import PrometheusError, RangeQuery, Series
from aiops.mcp import guard, topology
from aiops.mcp.backends import Backends
from aiops.mcp.common import BACKENDS, READ_ONLY, TAGS, k8s_name, prom_message, prom_query
from aiops.mcp.incidents import read_incident
from aiops.mcp.models import Call, QueryAnswer, SeriesView, ServiceHealth, SignalHealth, Topology

BASELINE_TTL_S = 60.0


def query_metrics(
    promql: str,
    start: str | None = None,
    end: str = "now",
    step: str | None = None,
    b: Backends = BACKENDS,
) -> QueryAnswer:
    """Run PromQL against Prometheus. Without `start` it is an instant query at `end`;
    with `start` a range query. Times: 'now', '-30m', '-2h' or ISO 8601. Limits: a range
    of 7 days, 1000 points and 50 series per answer, 10 s of evaluation."""
    text = guard.check_promql(promql)
    now = datetime.now(UTC)
    if start is None:
        at = guard.parse_time(end, "end", now)
        series = prom_query(b, RangeQuery(text, at, at, 0))
        step_s = None
    else:
        w = guard.window(start, end, step, now)
        series = prom_query(b, RangeQuery(text, w.start, w.end, w.step_s))
        step_s = w.step_s
    shown = series[: guard.MAX_SERIES]
    truncated = None
    if len(series) > len(shown):
        truncated = (
            f"{len(series)} or more series matched; showing the first "
            f"{len(shown)}: aggregate (sum by, topk) to see all"
        )
    return QueryAnswer(
        query=text,
        kind="range" if start is not None else "instant",
        series=[_series_view(s) for s in shown],
        step_s=step_s,
        truncated=truncated,
    )


def get_service_health(
    service: str, namespace: str = "default", b: Backends = BACKENDS
) -> ServiceHealth:
    """The golden signals of one workload (traffic, errors, latency, saturation,
    availability) now, against their median over the hour before the last 10 minutes."""
    from aiops.agent.metrics import workload_of_pod
    from aiops.detect.catalog import build_catalog  # numpy: only when asked

    service, namespace = k8s_name(service, "service"), k8s_name(namespace, "namespace")
    detection = b.settings.detection
    now = datetime.now(UTC)
    live = [s for s in b.discovery().current().signals if s.detect]  # what the cluster feeds
    signals = [
        sig
        for sig in build_catalog(detection.signals, base=live)
        if sig.namespace_label is not None and sig.name not in detection.disabled
    ]
    rendered = [sig.render_for(namespace, window=detection.rate_window) for sig in signals]
    current, baselines = _current_and_baselines(b, rendered, now)
    out, problems = [], []
    for sig, query, cur, base in zip(signals, rendered, current, baselines, strict=True):
        if isinstance(cur, PrometheusError):
            problems.append(f"{sig.name}: {prom_message(str(cur), sig.name)}")
            continue
        base_by = {} if isinstance(base, PrometheusError) else {_key(s): s.values[-1] for s in base}
        for s in cur:
            entity = s.labels.get(sig.entity_label, "")
            if entity != service and workload_of_pod(entity) != service:
                continue
            value = s.values[-1] if s.values else math.nan
            baseline = base_by.get(_key(s))
            out.append(
                SignalHealth(
                    signal=sig.name,
                    group=sig.group,
                    entity=entity,
                    unit=sig.unit,
                    now=_num(value),
                    baseline=_num(baseline),
                    verdict=_verdict(value, baseline, sig.direction.value),
                    query=query,
                )
            )
    note = None
    if not out:
        note = (
            f"no series for {service!r} in namespace {namespace!r}; check the names with "
            "get_topology or describe_workload"
        )
    return ServiceHealth(
        service=service, namespace=namespace, at=now, signals=out, note=note, problems=problems
    )


def get_topology(
    namespace: str = "default", window: str = "5m", b: Backends = BACKENDS
) -> Topology:
    """Who calls whom in a namespace (requests per second per edge over the last `window`, from
    the metric profiles the cluster has: Istio, Linkerd, OpenTelemetry servicegraph), and each
    edge's health against the hour before: what the caller waited beside what the callee spent,
    failures each side saw, a verdict (ok, slower, slow network, failing, calls lost)."""
    from aiops.agent.metrics import plan_queries

    namespace = k8s_name(namespace, "namespace")
    seconds = guard.parse_duration(window, "window")
    if not 60 <= seconds <= 86400:
        raise ToolError("window must be between 1m and 1d, e.g. '5m'")
    plan = plan_queries(namespace, seconds / 4, b.discovery().current().by_name())
    edges_q = next((q.promql for q in plan.queries if q.kind == "edges"), None)
    if edges_q is None:
        raise ToolError(
            "no call graph here: no metric profile of this cluster reports calls between "
            "workloads (Istio, Linkerd or the OpenTelemetry servicegraph connector)"
        )
    now = datetime.now(UTC)
    calls: list[Call] = []
    for s in prom_query(b, RangeQuery(edges_q, now, now, 0)):
        src, dst = s.labels.get("client", ""), s.labels.get("server", "")
        rate = s.values[-1] if s.values else math.nan
        if src and dst and src != dst and math.isfinite(rate) and rate > 0:
            calls.append(Call(source=src, to=dst, rps=round(rate, 4)))
    calls.sort(key=lambda c: (c.source, c.to))
    services = sorted({c.source for c in calls} | {c.to for c in calls})
    health = topology.edge_health_view(b.prometheus(), namespace, seconds, now)
    return Topology(
        namespace=namespace,
        window=window,
        services=services,
        calls=calls,
        query=edges_q,
        **health,
    )


async def plot_metric(
    promql: str | None = None,
    incident_id: str | None = None,
    start: str = "-1h",
    end: str = "now",
    shade_start: str | None = None,
    shade_end: str | None = None,
    edge: str | None = None,
    namespace: str = "default",
    b: Backends = BACKENDS,
) -> ToolResult:
    """A PNG chart of a PromQL range (up to 8 series, time in UTC, a legend) with the anomaly
    window shaded. Give `promql` (and optionally shade_start/shade_end), an `incident_id` to
    plot its first anomaly around the time it started, or an `edge` ('caller->callee', in
    `namespace`) to draw what the caller waited beside what the callee spent."""
    shade: tuple[datetime, datetime] | None = None
    now = datetime.now(UTC)
    title = promql or ""
    if edge is not None and promql is None:
        step = guard.window(start, end, None, now).step_s
        promql = topology.edge_chart(edge, k8s_name(namespace, "namespace"), step)
        title = f"{edge.strip()} in {namespace}: what the caller waited (client), the callee spent"
    if promql is None and incident_id is None:
        raise ToolError("give promql, incident_id (its anomaly) or edge ('caller->callee')")
    if promql is None and incident_id is not None:
        detail = await read_incident(await b.temporal(), incident_id)
        if detail.incident is None or not detail.incident.anomalies:
            raise ToolError(f"incident {incident_id} has no anomalies to plot; give promql instead")
        a = detail.incident.anomalies[0]
        promql, title = a.query, f"{a.signal} of {a.entity} ({incident_id})"
        shade = a.evidence_window or (a.start, min(now, a.start + timedelta(minutes=10)))
        start = (shade[0] - timedelta(minutes=30)).isoformat()
        end = min(now, shade[1] + timedelta(minutes=30)).isoformat()
    text = guard.check_promql(promql or "")
    w = guard.window(start, end, None, now)
    if shade_start is not None or shade_end is not None:
        shade = (
            guard.parse_time(shade_start or start, "shade_start", now),
            guard.parse_time(shade_end or end, "shade_end", now),
        )
    series = await asyncio.to_thread(prom_query, b, RangeQuery(text, w.start, w.end, w.step_s))
    try:
        png = await asyncio.to_thread(
            line_chart,
            [Line(s.labels, s.timestamps, s.values) for s in series],
            title=title or text,
            shade=(shade[0].timestamp(), shade[1].timestamp()) if shade else None,
            x_range=(w.start.timestamp(), w.end.timestamp()),
        )
    except NothingToDrawError:
        raise ToolError(
            f"the query returned no data between {w.start.isoformat()} and "
            f"{w.end.isoformat()}; check the PromQL with query_metrics"
        ) from None
    caption = f"{text}\n{w.start.isoformat()} .. {w.end.isoformat()} (UTC)" + (
        f"; shaded: {shade[0].isoformat()} .. {shade[1].isoformat()}" if shade else ""
    )
    return ToolResult(
        content=[
            Image(data=png, format="png").to_image_content(),
            TextContent(type="text", text=caption),
        ]
    )


def register(mcp: FastMCP) -> None:
    for tool in (query_metrics, get_service_health, get_topology, plot_metric):
        mcp.tool(tool, annotations=READ_ONLY, tags=TAGS)


class _TtlCache:
    def __init__(self, ttl_s: float) -> None:
        self._ttl = ttl_s
        self._items: dict[str, tuple[float, list[Series]]] = {}

    def get(self, key: str) -> list[Series] | None:
        hit = self._items.get(key)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    def put(self, key: str, value: list[Series]) -> None:
        if len(self._items) > 1000:  # many namespaces: start over rather than grow
            self._items.clear()
        self._items[key] = (time.monotonic() + self._ttl, value)


_BASELINES = _TtlCache(BASELINE_TTL_S)


def _current_and_baselines(
    b: Backends, rendered: list[str], now: datetime
) -> tuple[list[list[Series] | PrometheusError], list[list[Series] | PrometheusError]]:
    """Each query now, and its baseline: a median over an hour that ended 10 minutes ago. The
    baseline barely moves within a minute and is the expensive half (subqueries): it is reused
    for BASELINE_TTL_S."""
    base_text = [f"quantile_over_time(0.5, ({q})[1h:1m] offset 10m)" for q in rendered]
    cached = {q: hit for q in base_text if (hit := _BASELINES.get(q)) is not None}
    missing = [q for q in base_text if q not in cached]
    queries = [RangeQuery(q, now, now, 0) for q in (*rendered, *missing)]
    results = b.prometheus().fetch_many(queries, parallel=8)
    fresh: dict[str, list[Series] | PrometheusError] = dict(cached)
    for q, r in zip(missing, results[len(rendered) :], strict=True):
        fresh[q] = r
        if not isinstance(r, PrometheusError):
            _BASELINES.put(q, r)
    return results[: len(rendered)], [fresh[q] for q in base_text]


def _series_view(s: Series) -> SeriesView:
    points = [
        (t, v if math.isfinite(v) else None) for t, v in zip(s.timestamps, s.values, strict=False)
    ]
    return SeriesView(labels=s.labels, points=points[-guard.MAX_POINTS :])


def _key(s: Series) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(s.labels.items()))


def _num(value: float | None) -> float | None:
    return round(value, 6) if value is not None and math.isfinite(value) else None


def _verdict(now: float, baseline: float | None, direction: str) -> str:
    if not math.isfinite(now):
        return "no data"
    if baseline is None or not math.isfinite(baseline):
        return "no baseline"
    change = (now - baseline) / max(abs(baseline), 1e-3)
    if direction == "up":
        worse = change > 0.5
    elif direction == "down":
        worse = change < -0.5
    else:
        worse = abs(change) > 0.5
    return "worse than baseline" if worse else "normal"
