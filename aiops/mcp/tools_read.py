"""Read tools (annotated read-only, tagged `investigate`): incidents, metrics, cluster, rules.

Every tool checks its arguments itself and answers a bad one with a ToolError that says what to
write instead; failures of Prometheus, Kubernetes or Temporal become ToolErrors naming the
service and what to check. Nothing here changes anything anywhere.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.tools import ToolResult
from fastmcp.utilities.types import Image
from mcp.types import TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from aiops.domain import RemediationPlan, RiskLevel, Step
from aiops.integrations.prometheus import PrometheusError, RangeQuery, Series
from aiops.mcp import guard
from aiops.mcp.audit import audit_trail
from aiops.mcp.auth import current_caller
from aiops.mcp.backends import Backends
from aiops.mcp.incidents import read_anomalies, read_incident, recent_incident_ids
from aiops.mcp.plot import line_chart
from aiops.mcp.views import incident_view
from aiops.policy import PolicyContext, can_approve, evaluate
from aiops.policy.models import ACTION_KINDS

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
TAGS = {"investigate"}
MAX_LIST = 200
STATUSES = ("Running", "Completed", "Failed", "Terminated", "TimedOut", "Canceled")
BASELINE_TTL_S = 60.0
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


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


def _series_json(s: Series, max_points: int) -> dict[str, Any]:
    points = [
        [t, v if math.isfinite(v) else None] for t, v in zip(s.timestamps, s.values, strict=False)
    ]
    return {"labels": s.labels, "points": points[-max_points:]}


def register(mcp: FastMCP, b: Backends) -> None:
    settings = b.settings
    baselines = TtlCache(BASELINE_TTL_S)

    def prom_query(q: RangeQuery) -> list[Series]:
        try:
            return b.prometheus().fetch(q, guard.limits())
        except PrometheusError as exc:
            raise ToolError(_prom_message(str(exc), q.promql, b)) from exc

    def kube_call(fn: Any) -> Any:
        from aiops.agent.ports import ClusterReadError

        try:
            return b.redact(fn())
        except ClusterReadError as exc:
            raise ToolError(b.redactor.text(str(exc))) from exc

    # ---- incidents ---------------------------------------------------------------------

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    async def list_incidents(status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """List recent incidents (newest first), optionally only those whose workflow has a
        given status (Running, Completed, Failed, Terminated, TimedOut, Canceled)."""
        bounded(limit, "limit", 1, MAX_LIST)
        if status is not None and status not in STATUSES:
            raise ToolError(f"status must be one of {', '.join(STATUSES)}; got {status[:40]!r}")
        client = await b.temporal()
        found = await recent_incident_ids(client, limit, status)
        return [
            {
                "id": i,
                "status": st,
                "started_at": t0.isoformat(),
                "closed_at": t1.isoformat() if t1 else None,
            }
            for i, st, t0, t1 in found
        ]

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    async def get_incident(incident_id: str) -> dict[str, Any]:
        """One incident: its anomalies, the root-cause report (ranked hypotheses with
        evidence), the remediation plan with the policy decision, the status, and, while it
        waits for a decision, the plan hash to approve with its dry-run diff and expiry."""
        detail = await read_incident(await b.temporal(), incident_id)
        return b.redact_dict(incident_view(detail, settings))

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    async def list_anomalies(limit: int = 10, service: str | None = None) -> list[dict[str, Any]]:
        """Anomalies behind the most recent incidents (newest incidents first), including those
        that joined an open incident later: the signal, series, score, value against baseline
        and the PromQL that shows it."""
        bounded(limit, "limit", 1, 50)
        client = await b.temporal()
        ids = await recent_incident_ids(client, limit)
        read = await asyncio.gather(
            *(read_anomalies(client, i) for i, *_ in ids), return_exceptions=True
        )
        out = []
        for found in read:
            if isinstance(found, BaseException):
                continue  # an incident deleted since it was listed
            incident, anomalies = found
            for a in anomalies:
                if service is not None and service not in (a.entity, incident.service):
                    continue
                out.append(
                    {"incident_id": incident.id, "entity": a.entity, **a.model_dump(mode="json")}
                )
        return b.redact_rows(out)

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    async def get_audit_trail(incident_id: str) -> list[dict[str, str]]:
        """The incident's history in plain words: who did what, and when (from the Temporal
        workflow history: opened, investigated, planned, policy, approvals, steps, closed)."""
        client = await b.temporal()
        detail = await read_incident(client, incident_id)
        return [
            {k: b.redactor.text(v) for k, v in row.items()}
            for row in await audit_trail(client, detail)
        ]

    # ---- metrics -----------------------------------------------------------------------

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    def query_metrics(
        promql: str, start: str | None = None, end: str = "now", step: str | None = None
    ) -> dict[str, Any]:
        """Run PromQL against Prometheus. Without `start` it is an instant query at `end`;
        with `start` a range query. Times: 'now', '-30m', '-2h' or ISO 8601. Limits: a range
        of 7 days, 1000 points and 50 series per answer, 10 s of evaluation."""
        text = guard.check_promql(promql)
        now = datetime.now(UTC)
        if start is None:
            at = guard.parse_time(end, "end", now)
            series = prom_query(RangeQuery(text, at, at, 0))
            step_s = 0.0
        else:
            w = guard.window(start, end, step, now)
            series = prom_query(RangeQuery(text, w.start, w.end, w.step_s))
            step_s = w.step_s
        shown = series[: guard.MAX_SERIES]
        answer: dict[str, Any] = {
            "query": text,
            "kind": "range" if start is not None else "instant",
            "series": [_series_json(s, guard.MAX_POINTS) for s in shown],
        }
        if step_s:
            answer["step_s"] = step_s
        if len(series) > len(shown):
            answer["truncated"] = (
                f"{len(series)} or more series matched; showing the first "
                f"{len(shown)}: aggregate (sum by, topk) to see all"
            )
        return answer

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    def get_service_health(service: str, namespace: str = "default") -> dict[str, Any]:
        """The golden signals of one workload (traffic, errors, latency, saturation,
        availability) now, against their median over the hour before the last 10 minutes."""
        from aiops.agent.metrics import workload_of_pod
        from aiops.detect.catalog import build_catalog  # numpy: only when asked

        service, namespace = k8s_name(service, "service"), k8s_name(namespace, "namespace")
        catalog = build_catalog(settings.detection.signals)
        now = datetime.now(UTC)
        signals = [
            sig
            for sig in catalog
            if sig.namespace_label is not None and sig.name not in settings.detection.disabled
        ]
        rendered = [
            sig.render_for(namespace, window=settings.detection.rate_window) for sig in signals
        ]
        queries = [RangeQuery(q, now, now, 0) for q in rendered]
        # The baseline (a median over an hour that ended 10 minutes ago) barely moves within a
        # minute and is the expensive half (subqueries): reuse it for BASELINE_TTL_S.
        base_text = [f"quantile_over_time(0.5, ({q})[1h:1m] offset 10m)" for q in rendered]
        fresh = baselines.get_many(base_text)
        missing = [q for q in base_text if q not in fresh]
        results = b.prometheus().fetch_many(
            [*queries, *(RangeQuery(q, now, now, 0) for q in missing)], parallel=8
        )
        for q, r in zip(missing, results[len(queries) :], strict=True):
            fresh[q] = r
            if not isinstance(r, PrometheusError):
                baselines.put(q, r)
        out, problems = [], []
        for i, sig in enumerate(signals):
            cur, base = results[i], fresh[base_text[i]]
            if isinstance(cur, PrometheusError):
                problems.append(f"{sig.name}: {_prom_message(str(cur), sig.name, b)}")
                continue
            base_by = (
                {}
                if isinstance(base, PrometheusError)
                else {_key(s.labels): s.values[-1] for s in base}
            )
            for s in cur:
                entity = s.labels.get(sig.entity_label, "")
                if entity != service and workload_of_pod(entity) != service:
                    continue
                value = s.values[-1] if s.values else math.nan
                baseline = base_by.get(_key(s.labels))
                out.append(
                    {
                        "signal": sig.name,
                        "group": sig.group,
                        "entity": entity,
                        "unit": sig.unit,
                        "now": _num(value),
                        "baseline": _num(baseline),
                        "verdict": _verdict(value, baseline, sig.direction.value),
                        "query": sig.render_for(namespace, window=settings.detection.rate_window),
                    }
                )
        answer: dict[str, Any] = {
            "service": service,
            "namespace": namespace,
            "at": now.isoformat(),
            "signals": out,
        }
        if not out:
            answer["note"] = (
                f"no series for {service!r} in namespace {namespace!r}; check the "
                "names with get_topology or describe_workload"
            )
        if problems:
            answer["problems"] = problems
        return answer

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    def get_topology(namespace: str = "default", window: str = "5m") -> dict[str, Any]:
        """Who calls whom in a namespace, with requests per second on each edge (Istio
        istio_requests_total, server side), over the last `window`."""
        from aiops.agent.metrics import plan_queries

        namespace = k8s_name(namespace, "namespace")
        seconds = guard.parse_duration(window, "window")
        if not 60 <= seconds <= 86400:
            raise ToolError("window must be between 1m and 1d, e.g. '5m'")
        plan = plan_queries(namespace, seconds / 4)
        edges_q = next(q for q in plan.queries if q.kind == "edges").promql
        now = datetime.now(UTC)
        edges: list[dict[str, Any]] = []
        for s in prom_query(RangeQuery(edges_q, now, now, 0)):
            src, dst = s.labels.get("source_workload", ""), s.labels.get("destination_workload", "")
            rate = s.values[-1] if s.values else math.nan
            if src and dst and src != dst and math.isfinite(rate) and rate > 0:
                edges.append({"from": src, "to": dst, "rps": round(rate, 4)})
        edges.sort(key=lambda e: (str(e["from"]), str(e["to"])))
        nodes = sorted({str(e["from"]) for e in edges} | {str(e["to"]) for e in edges})
        return {
            "namespace": namespace,
            "window": window,
            "services": nodes,
            "calls": edges,
            "query": edges_q,
        }

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    async def plot_metric(
        promql: str | None = None,
        incident_id: str | None = None,
        start: str = "-1h",
        end: str = "now",
        shade_start: str | None = None,
        shade_end: str | None = None,
    ) -> ToolResult:
        """A PNG chart of a PromQL range (up to 8 series) with the anomaly window shaded.
        Give `promql` (and optionally shade_start/shade_end), or an `incident_id` to plot its
        first anomaly around the time it started."""
        shade: tuple[datetime, datetime] | None = None
        now = datetime.now(UTC)
        if promql is None and incident_id is None:
            raise ToolError("give promql, or incident_id to plot that incident's anomaly")
        if incident_id is not None and promql is None:
            detail = await read_incident(await b.temporal(), incident_id)
            if detail.incident is None or not detail.incident.anomalies:
                raise ToolError(
                    f"incident {incident_id} has no anomalies to plot; give promql instead"
                )
            a = detail.incident.anomalies[0]
            promql = a.query
            shade = a.evidence_window or (a.start, min(now, a.start + timedelta(minutes=10)))
            start = (shade[0] - timedelta(minutes=30)).isoformat()
            end = min(now, shade[1] + timedelta(minutes=30)).isoformat()
        assert promql is not None
        text = guard.check_promql(promql)
        w = guard.window(start, end, None, now)
        if shade_start is not None or shade_end is not None:
            shade = (
                guard.parse_time(shade_start or start, "shade_start", now),
                guard.parse_time(shade_end or end, "shade_end", now),
            )
        series = await asyncio.to_thread(prom_query, RangeQuery(text, w.start, w.end, w.step_s))
        if not series:
            raise ToolError(
                f"the query returned no data between {w.start.isoformat()} and "
                f"{w.end.isoformat()}; check the PromQL with query_metrics"
            )
        shown = series[:8]
        png, (lo, hi) = line_chart(
            [(s.timestamps, s.values) for s in shown],
            (w.start.timestamp(), w.end.timestamp()),
            (shade[0].timestamp(), shade[1].timestamp()) if shade else None,
        )
        legend = "; ".join(f"line {i + 1}: {s.labels or '{}'}" for i, s in enumerate(shown))
        caption = (
            f"{text}\nx: {w.start.isoformat()} .. {w.end.isoformat()}; y: {lo:.4g} .. "
            f"{hi:.4g}"
            + (f"; shaded: {shade[0].isoformat()} .. {shade[1].isoformat()}" if shade else "")
            + f"\n{legend}"
        )
        if len(series) > len(shown):
            caption += f"\n({len(series) - len(shown)} more series not drawn)"
        return ToolResult(
            content=[
                Image(data=png, format="png").to_image_content(),
                TextContent(type="text", text=b.redactor.text(caption)),
            ]
        )

    # ---- cluster (read-only) -----------------------------------------------------------

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    async def describe_workload(namespace: str, name: str) -> dict[str, Any]:
        """A Deployment: replicas, revision, images, its pods (phase, restarts, last
        termination reason), ReplicaSets and its recent events."""
        from aiops.agent.metrics import workload_of_pod

        namespace, name = k8s_name(namespace, "namespace"), k8s_name(name, "name")
        kube = b.kube()
        # Four independent reads at once: the answer waits for the slowest, not their sum.
        deps, pods, rss, events = await asyncio.gather(
            asyncio.to_thread(
                kube_call,
                lambda: [
                    d.model_dump(mode="json")
                    for d in kube.list_deployments(namespace)
                    if d.name == name
                ],
            ),
            asyncio.to_thread(
                kube_call,
                lambda: [
                    p.model_dump(mode="json")
                    for p in kube.list_pods(namespace)
                    if workload_of_pod(p.name) == name
                ],
            ),
            asyncio.to_thread(
                kube_call,
                lambda: [
                    r.model_dump(mode="json")
                    for r in kube.list_replicasets(namespace)
                    if r.deployment == name
                ],
            ),
            asyncio.to_thread(
                kube_call,
                lambda: [
                    e.model_dump(mode="json")
                    for e in kube.list_events(namespace)
                    if e.object_name == name or e.object_name.startswith(name + "-")
                ],
            ),
        )
        if not deps:
            raise ToolError(
                f"no Deployment {name!r} in namespace {namespace!r}; "
                "get_topology lists the services of a namespace"
            )
        return {"deployment": deps[0], "pods": pods, "replicasets": rss, "events": events[-30:]}

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    def get_events(
        namespace: str, object_name: str | None = None, warnings_only: bool = False, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Kubernetes events of a namespace (oldest first, the newest `limit`), optionally
        only those about one object (name or name prefix) or only warnings."""
        namespace = k8s_name(namespace, "namespace")
        bounded(limit, "limit", 1, 500)
        kube = b.kube()
        events = [e.model_dump(mode="json") for e in kube_call(lambda: kube.list_events(namespace))]
        picked = [
            e
            for e in events
            if (object_name is None or e["object_name"].startswith(object_name))
            and (not warnings_only or e["type"] == "Warning")
        ]
        return picked[-limit:]

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    def get_pod_logs(
        namespace: str, pod: str, tail_lines: int = 200, max_bytes: int = 16_000
    ) -> dict[str, Any]:
        """The last lines of a pod's log, capped in size, with secrets (tokens, passwords,
        keys) replaced by [REDACTED]."""
        namespace, pod = k8s_name(namespace, "namespace"), k8s_name(pod, "pod")
        bounded(tail_lines, "tail_lines", 1, 2000)
        bounded(max_bytes, "max_bytes", 256, 64_000)
        kube = b.kube()
        text: str = kube_call(lambda: kube.pod_logs(namespace, pod, tail_lines=tail_lines))
        truncated = len(text.encode()) > max_bytes
        if truncated:
            text = text.encode()[-max_bytes:].decode(errors="ignore")
            text = text.split("\n", 1)[-1]  # drop the cut first line
        return {"namespace": namespace, "pod": pod, "log": text, "truncated": truncated}

    # ---- rules ------------------------------------------------------------------------

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    def list_playbooks() -> list[dict[str, Any]]:
        """The allow-listed remediation playbooks: what each fixes, its risk, its steps and
        how it verifies the fix."""
        books = b.playbooks()
        return [
            {
                "id": p.id,
                "description": p.description,
                "risk": p.risk.value,
                "priority": p.priority,
                "faults": [f.value for f in p.matches.faults],
                "actions": [s.action for s in p.steps],
                "compensation": [s.action for s in p.compensation],
                "verification": p.verification.model_dump(mode="json"),
            }
            for p in sorted(books.playbooks.values(), key=lambda p: p.priority)
        ]

    @mcp.tool(annotations=READ_ONLY, tags=TAGS)
    def explain_policy(
        action: str,
        name: str,
        namespace: str | None = None,
        replicas: int | None = None,
        risk: str = "low",
        current_replicas: int | None = None,
        labels: Annotated[dict[str, str] | None, Field(description="the target's labels")] = None,
    ) -> dict[str, Any]:
        """What the policy decides for one action on one target (allowed? approval needed,
        by whom?), with every reason, and whether you may approve it."""
        if action not in ACTION_KINDS:
            raise ToolError(
                f"action must be one of {', '.join(sorted(ACTION_KINDS))}; got {action[:60]!r}"
            )
        if risk not in {r.value for r in RiskLevel}:
            raise ToolError(f"risk must be one of low, medium, high; got {risk[:30]!r}")
        name = k8s_name(name, "name")
        kind = ACTION_KINDS[action]
        if kind == "Node":
            args: dict[str, Any] = {"node": name, "kind": kind}
        else:
            if namespace is None:
                raise ToolError(f"{action} needs a namespace")
            args = {"namespace": k8s_name(namespace, "namespace"), "name": name, "kind": kind}
        if action == "k8s.scale":
            if replicas is None:
                raise ToolError("k8s.scale needs replicas (the new replica count)")
            args["replicas"] = bounded(replicas, "replicas", 0, 10_000)
        try:
            plan = RemediationPlan(
                incident_id="explain",
                playbook_id="explain",
                namespace=namespace,
                target=name,
                risk=RiskLevel(risk),
                steps=[Step(action=action, args=args)],
            )
            target = plan.steps[0].target
            context = PolicyContext(
                now=datetime.now(UTC),
                current_replicas={target: current_replicas} if current_replicas is not None else {},
                labels={target: labels} if labels else {},
            )
        except ValidationError as exc:
            raise ToolError(f"bad argument: {exc.errors()[0]['msg']}") from exc
        policy = b.policy()
        decision = evaluate(plan, context, policy)
        caller = current_caller(settings, policy)
        return {
            "plan": {
                "action": action,
                "target": target,
                "risk": risk,
                **({"replicas": replicas} if replicas is not None else {}),
            },
            "decision": decision.model_dump(mode="json"),
            "you": caller.describe(),
            "you_may_approve": bool(caller.identity and can_approve(caller.identity, decision)),
        }


class TtlCache:
    def __init__(self, ttl_s: float) -> None:
        self._ttl = ttl_s
        self._items: dict[str, tuple[float, list[Series]]] = {}

    def get_many(self, keys: list[str]) -> dict[str, list[Series] | PrometheusError]:
        now = time.monotonic()
        return {k: hit[1] for k in keys if (hit := self._items.get(k)) and hit[0] > now}

    def put(self, key: str, value: list[Series]) -> None:
        if len(self._items) > 1000:  # many namespaces: start over rather than grow
            self._items.clear()
        self._items[key] = (time.monotonic() + self._ttl, value)


def _prom_message(raw: str, promql: str, b: Backends) -> str:
    marker = f"refused the query {promql!r}: "
    if marker in raw:
        why = raw.split(marker, 1)[1]
        return (
            f"Prometheus rejected the PromQL: {b.redactor.text(why)[:400]}; fix the "
            "expression (https://prometheus.io/docs/prometheus/latest/querying/basics/)"
        )
    if "did not answer within" in raw:
        return (
            "the query took longer than the time limit; narrow the range, raise the step "
            "or aggregate (sum by ...)"
        )
    return b.redactor.text(raw)


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _num(value: float | None) -> float | None:
    return round(value, 6) if value is not None and math.isfinite(value) else None


def _verdict(now: float, baseline: float | None, direction: str) -> str:
    if not math.isfinite(now):
        return "no data"
    if baseline is None or not math.isfinite(baseline):
        return "no baseline"
    scale = max(abs(baseline), 1e-3)
    change = (now - baseline) / scale
    worse = (
        change > 0.5
        if direction == "up"
        else (change < -0.5 if direction == "down" else abs(change) > 0.5)
    )
    return "worse than baseline" if worse else "normal"
