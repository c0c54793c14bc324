"""Build the RCA metrics matrix (`<service>_<metric>` columns) from the real exporters' metrics.

Request metrics (rate, errors, p99 latency) and the call graph come from the signals of the
metric profiles the cluster has (Istio, Linkerd, OpenTelemetry, ...: aiops/profiles, chosen by
discovery), whose series carry the canonical labels `workload`, `namespace`, `client`, `server`;
containers, pods, deployments and nodes from cAdvisor, kube-state-metrics and node_exporter (the
base profile every cluster has). Each column remembers the PromQL that produced it, so the
report's evidence cites a query a person can paste into Prometheus.

Pods are mapped to their workload by name (`<deployment>-<replicaset hash>-<pod hash>`) inside the
query with label_replace, so the cited query returns one series per workload on its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from aiops.agent.ports import MetricsSource, SeriesLike
from aiops.profiles import Signal, builtin_assembly
from aiops.rca import MetricsMatrix

# Deployment pods are <deployment>-<pod-template-hash>-<suffix>; Prometheus anchors the regex.
POD_TO_WORKLOAD = "(.+)-[a-z0-9]{5,10}-[a-z0-9]{5}"
_POD_RX = re.compile(f"^{POD_TO_WORKLOAD}$")


def workload_of_pod(pod: str) -> str:
    m = _POD_RX.match(pod)
    return m.group(1) if m else pod


def _q(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


Kind = Literal["workload", "node", "placement", "edges"]


@dataclass(frozen=True)
class MetricQuery:
    metric: str  # the column suffix (`<service>_<metric>`), or a name for non-column queries
    promql: str
    kind: Kind
    by: str  # the label that names the entity of each series


@dataclass(frozen=True)
class QueryPlan:
    namespace: str
    rate_window: str
    queries: tuple[MetricQuery, ...]


def rate_window_s(step_s: float) -> int:
    """Wide enough for rate() to see at least four scrapes at the query step."""
    return max(60, math.ceil(4 * step_s))


def rate_window(step_s: float) -> str:
    return f"{rate_window_s(step_s)}s"


def restarts_window(step_s: float, rate_w: str) -> str:
    return f"{max(int(rate_w[:-1]), min(300, math.ceil(20 * step_s)))}s"


def plan_queries(
    namespace: str, step_s: float, signals: Mapping[str, Signal] | None = None
) -> QueryPlan:
    """`signals`: the live signals by name (discovery); default: every shipped profile's."""
    live = signals if signals is not None else builtin_assembly().by_name()
    ns = _q(namespace)
    w = rate_window(step_s)
    containers = f'namespace="{ns}", container!="", container!="POD"'

    def per_workload(expr: str, how: str = "sum") -> str:
        return (
            f'{how} by (workload) (label_replace({expr}, "workload", "$1", "pod", '
            f'"{POD_TO_WORKLOAD}"))'
        )

    def signal(metric: str, name: str, kind: Kind, by: str) -> list[MetricQuery]:
        sig = live.get(name)
        if sig is None:
            return []
        # Every series however few requests: the ranking weighs a thin p99 itself.
        promql = sig.render({"namespace": namespace}, w, guarded=False)
        return [MetricQuery(metric, promql, kind, by)]

    queries = (
        *signal("requests_rate", "request_rate", "workload", "workload"),
        *signal("error_ratio", "error_ratio", "workload", "workload"),
        *signal("latency_p99", "latency_p99", "workload", "workload"),
        MetricQuery(
            "cpu_usage",
            per_workload(f"rate(container_cpu_usage_seconds_total{{{containers}}}[{w}])"),
            "workload",
            "workload",
        ),
        MetricQuery(
            "memory_working_set",
            # The largest pod, not the sum: a leak grows each pod towards its own limit, while
            # a rolling update's surge pods would triple a sum for a minute (seen in the lab: a
            # benign release looked like a memory fault).
            per_workload(f"container_memory_working_set_bytes{{{containers}}}", "max"),
            "workload",
            "workload",
        ),
        MetricQuery(
            "restarts",
            # Back-off spaces restarts minutes apart: count them over a longer window (20 steps,
            # 5 minutes at the default 15 s; at second steps a minute, as the window's cost
            # grows with its length times the number of steps).
            per_workload(
                f'increase(kube_pod_container_status_restarts_total{{namespace="{ns}"}}'
                f"[{restarts_window(step_s, w)}])"
            ),
            "workload",
            "workload",
        ),
        MetricQuery(
            "available_replicas",
            f'sum by (deployment) (kube_deployment_status_replicas_available{{namespace="{ns}"}})',
            "workload",
            "deployment",
        ),
        MetricQuery(
            "node_cpu_busy",
            f'1 - avg by (instance, node) (rate(node_cpu_seconds_total{{mode="idle"}}[{w}]))',
            "node",
            "node",
        ),
        MetricQuery(
            "node_memory_used",
            "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
            "node",
            "node",
        ),
        MetricQuery(
            "placement",
            f'max by (pod, node, host_ip) (kube_pod_info{{namespace="{ns}"}})',
            "placement",
            "pod",
        ),
        *signal("call_graph", "edge_request_rate", "edges", "server"),
    )
    return QueryPlan(namespace=namespace, rate_window=w, queries=queries)


@dataclass
class GatheredMetrics:
    matrix: MetricsMatrix | None
    sources: dict[str, str]  # column -> PromQL
    call_graph: list[tuple[str, str]]
    placement: dict[str, list[str]]  # workload -> nodes its pods ran on
    node_columns: dict[str, dict[str, str]]  # node -> {metric: PromQL}
    node_matrix: MetricsMatrix | None = None  # `<node>_<metric>` columns, one per node
    notes: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)


def _node_name(labels: Mapping[str, str], ip_to_node: Mapping[str, str]) -> str | None:
    if labels.get("node"):
        return labels["node"]
    instance = labels.get("instance", "")
    host = instance.rsplit(":", 1)[0] if instance else ""
    return ip_to_node.get(host, host) or None


def gather(
    source: MetricsSource,
    namespace: str,
    start: datetime,
    end: datetime,
    step_s: float,
    *,
    max_workers: int = 8,
    signals: Mapping[str, Signal] | None = None,
) -> GatheredMetrics:
    """Run every query of the plan concurrently and assemble the matrix, graph and placement.

    A failing query costs its columns, not the investigation: it is named in `notes`; so does a
    request signal no profile of the cluster feeds.
    """
    plan = plan_queries(namespace, step_s, signals)
    notes: list[str] = []
    planned = {q.metric for q in plan.queries}
    for metric in ("requests_rate", "error_ratio", "latency_p99", "call_graph"):
        if metric not in planned:
            notes.append(
                f"no {metric} here: no metric profile of this cluster feeds it (request metrics "
                "come from Istio, Linkerd, OpenTelemetry or ingress-nginx)"
            )

    # "15s", not "15.0s": Prometheus rejects a fractional-looking duration string.
    step: float = int(step_s) if float(step_s).is_integer() else step_s

    def run(q: MetricQuery) -> Sequence[SeriesLike]:
        return source.query_range(q.promql, start, end, step)

    results: dict[str, Sequence[SeriesLike]] = {}
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = {q.metric: pool.submit(run, q) for q in plan.queries}
        for q in plan.queries:
            try:
                results[q.metric] = futures[q.metric].result()
            except Exception as exc:
                why = str(exc)
                why = why if len(why) <= 300 else why[:300] + "..."
                notes.append(f"query for {q.metric} failed ({why}); its columns are missing")
                results[q.metric] = []

    t0 = start.timestamp()
    n = math.floor((end.timestamp() - t0) / step_s + 1e-9) + 1
    times = t0 + step_s * np.arange(n, dtype=np.float64)

    def aligned(s: SeriesLike) -> np.ndarray:
        out = np.full(n, np.nan)
        for ts, v in zip(s.timestamps, s.values, strict=False):
            i = round((ts - t0) / step_s)
            if 0 <= i < n:
                out[i] = v
        return out

    columns: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    node_values: dict[str, dict[str, np.ndarray]] = {}
    node_sources: dict[str, dict[str, str]] = {}
    placement: dict[str, set[str]] = {}
    ip_to_node: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()

    for q in plan.queries:
        if q.kind != "placement":
            continue
        for s in results[q.metric]:
            pod, node = s.labels.get("pod"), s.labels.get("node")
            if pod and node:
                placement.setdefault(workload_of_pod(pod), set()).add(node)
                if s.labels.get("host_ip"):
                    ip_to_node[s.labels["host_ip"]] = node

    for q in plan.queries:
        series = results[q.metric]
        if q.kind == "workload":
            for s in series:
                entity = s.labels.get(q.by, "")
                if not entity or entity == "unknown":
                    continue
                col = f"{entity}_{q.metric}"
                values = aligned(s)
                if col in columns:  # several series for one workload: add them up
                    values = np.where(
                        np.isnan(columns[col]), values, np.nansum([columns[col], values], axis=0)
                    )
                columns[col] = values
                sources[col] = q.promql
        elif q.kind == "node":
            for s in series:
                node = _node_name(s.labels, ip_to_node)
                if node:
                    node_values.setdefault(node, {})[q.metric] = aligned(s)
                    node_sources.setdefault(node, {})[q.metric] = q.promql
        elif q.kind == "edges":
            for s in series:
                src, dst = s.labels.get("client", ""), s.labels.get(q.by, "")
                joins = bool(src and dst) and src != dst and "unknown" not in (src, dst)
                if joins and any(v > 0 for v in s.values if math.isfinite(v)):
                    edges.add((src, dst))

    # Every service gets the node metrics of the busiest node its pods ran on: a node fault shows
    # as the same departure in every workload on that node.
    services = sorted({c.split("_", 1)[0] for c in columns})
    for svc in services:
        for metric in ("node_cpu_busy", "node_memory_used"):
            stacks = [
                node_values[nd][metric]
                for nd in sorted(placement.get(svc, ()))
                if metric in node_values.get(nd, {})
            ]
            if not stacks:
                continue
            with np.errstate(all="ignore"):
                arr = np.array(stacks)
                col_values = np.where(
                    np.all(np.isnan(arr), axis=0), np.nan, np.nanmax(_nan_safe(arr), axis=0)
                )
            columns[f"{svc}_{metric}"] = col_values
            sources[f"{svc}_{metric}"] = next(
                node_sources[nd][metric]
                for nd in sorted(placement[svc])
                if metric in node_sources.get(nd, {})
            )

    usable = {c: v for c, v in columns.items() if np.isfinite(v).any()}
    if not usable:
        notes.append(
            f"no metrics found for namespace {namespace!r} between {_iso(start)} and {_iso(end)}"
        )
    matrix = (
        MetricsMatrix.from_series(times.tolist(), {c: usable[c].tolist() for c in sorted(usable)})
        if usable
        else None
    )
    node_series = {
        f"{nd}_{metric}": values.tolist()
        for nd, per_metric in sorted(node_values.items())
        for metric, values in sorted(per_metric.items())
        if np.isfinite(values).any()
    }
    return GatheredMetrics(
        matrix=matrix,
        node_matrix=MetricsMatrix.from_series(times.tolist(), node_series) if node_series else None,
        sources={c: sources[c] for c in usable},
        call_graph=sorted(edges),
        placement={k: sorted(v) for k, v in placement.items()},
        node_columns=node_sources,
        notes=notes,
        queries=[q.promql for q in plan.queries],
    )


def _nan_safe(arr: np.ndarray) -> np.ndarray:
    # nanmax warns on all-NaN columns; those are masked by the caller, so fill them with -inf.
    return np.where(np.isnan(arr), -np.inf, arr)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_of_services(
    placement: Mapping[str, Iterable[str]],
) -> dict[str, list[str]]:
    """node -> workloads that ran on it."""
    out: dict[str, list[str]] = {}
    for svc, nodes in placement.items():
        for nd in nodes:
            out.setdefault(nd, []).append(svc)
    return {k: sorted(v) for k, v in out.items()}
