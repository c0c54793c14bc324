"""Turn a ranking into the shared domain vocabulary: Hypothesis and Evidence, plus a summary line.

The ranking knows columns, not where they came from; the caller passes `sources` (column → the
PromQL that produced it) so every piece of evidence cites something a person can re-run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

from aiops.domain import Evidence, FaultType, Hypothesis
from aiops.rca.blame import is_edge_metric
from aiops.rca.classify import Family, family_of
from aiops.rca.models import (
    ChangeEvidence,
    ChangeKind,
    EdgeEvidence,
    MetricEvidence,
    RcaRanking,
    ServiceScore,
)

_CHANGE_KIND: dict[ChangeKind, Literal["rollout", "event", "node"]] = {
    ChangeKind.ROLLOUT: "rollout",
    ChangeKind.CONFIG_CHANGE: "rollout",
    ChangeKind.SCALE: "rollout",
    ChangeKind.RESTART: "event",
    ChangeKind.OOM_KILL: "event",
    ChangeKind.CORDON: "node",
}


NETWORK_FAULTS = frozenset({FaultType.NETWORK_LATENCY, FaultType.NETWORK_LOSS})

_FAULT_FAMILY = {
    FaultType.CPU: Family.CPU,
    FaultType.MEMORY: Family.MEMORY,
    FaultType.LATENCY: Family.LATENCY,
    FaultType.ERRORS: Family.ERRORS,
    FaultType.CRASHLOOP: Family.RESTARTS,
    FaultType.TRAFFIC_SURGE: Family.TRAFFIC,
    FaultType.NODE: Family.NODE,
}


def supporting_first(s: ServiceScore) -> list[MetricEvidence]:
    """The service's evidence with the metrics behind its fault type first (stable otherwise)."""
    fam = _FAULT_FAMILY.get(s.fault)
    return sorted(s.evidence, key=lambda e: family_of(e.metric) is not fam)


def _utc(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=UTC) if ts is not None else None


def _hhmm(ts: float | None) -> str:
    at = _utc(ts)
    return at.strftime("%H:%M:%S UTC") if at is not None else "?"


def describe_metric(e: MetricEvidence) -> str:
    verb = "rose" if e.direction > 0 else "fell"
    times = f" (x{e.ratio:.2g})" if e.ratio is not None and e.baseline > 0 else ""
    return (
        f"{e.column} {verb} from {e.baseline:.4g} to {e.value:.4g}{times}, "
        f"{e.score:.1f} robust sigmas, from {_hhmm(e.onset)}"
    )


def _ms(seconds: float) -> str:
    ms = seconds * 1000.0
    return f"{ms:.3g} ms" if ms < 1000 else f"{seconds:.3g} s"


# Presentation only: a side that moved by less than a quarter is shown as flat.
_FLAT = 1.25


def describe_edge(e: EdgeEvidence) -> str:
    """ "frontend → cartservice: client p50 12 ms → 210 ms, server p50 flat at 2 ms"."""
    q = e.statistic
    head = f"{e.client} → {e.server}: "
    if e.kind == "errors":
        seen = f"{(e.client_errors_after or 0.0):.1%}"
        served = (
            f", the callee's side {e.server_errors_after:.1%}"
            if e.server_errors_after is not None
            else ""
        )
        return f"{head}caller saw {seen} of calls fail{served}"
    client = f"client {q} {_ms(e.client_before)} → {_ms(e.client_after)}"
    lo, hi = sorted((e.server_before, e.server_after))
    if lo > 0 and hi / lo < _FLAT:
        server = f"server {q} flat at {_ms(e.server_after)}"
    else:
        server = f"server {q} {_ms(e.server_before)} → {_ms(e.server_after)}"
    return f"{head}{client}, {server}"


def edge_evidence(e: EdgeEvidence, source: str) -> Evidence:
    return Evidence(
        kind="topology",
        summary=describe_edge(e),
        source=source,
        observed_at=_utc(e.onset),
        value=e.client_after,
        baseline=e.client_before,
        weight=e.score * e.share,
    )


def describe_change(c: ChangeEvidence) -> str:
    detail = f": {c.detail}" if c.detail else ""
    return f"{c.kind.value} of {c.source or 'the workload'} at {_hhmm(c.at)}{detail}"


def metric_evidence(e: MetricEvidence, source: str) -> Evidence:
    return Evidence(
        kind="metric",
        summary=describe_metric(e),
        source=source,
        observed_at=_utc(e.onset),
        value=e.value,
        baseline=e.baseline,
        weight=max(e.peer_score, 0.0),
    )


def change_evidence(c: ChangeEvidence) -> Evidence:
    return Evidence(
        kind=_CHANGE_KIND[c.kind],
        summary=describe_change(c),
        source=c.source or c.kind.value,
        observed_at=_utc(c.at),
        weight=c.bonus,
    )


def to_hypothesis(
    s: ServiceScore,
    *,
    sources: Mapping[str, str] | None = None,
    namespace: str | None = None,
    evidence_limit: int = 5,
) -> Hypothesis:
    src = sources or {}
    evidence = [change_evidence(c) for c in s.changes]
    edges = [edge_evidence(e, src.get(e.name, e.name)) for e in s.edges]
    # The pseudo-columns of the service graph are told by their edges.
    metrics = [
        metric_evidence(e, src.get(e.column, e.column))
        for e in supporting_first(s)
        if not is_edge_metric(e.metric)
    ]
    evidence += [*edges, *metrics] if s.fault in NETWORK_FAULTS else [*metrics, *edges]
    return Hypothesis(
        target=s.service,
        target_kind="Deployment",
        namespace=namespace,
        fault=s.fault,
        confidence=round(s.confidence, 4),
        evidence=evidence[:evidence_limit],
    )


def to_hypotheses(
    ranking: RcaRanking,
    *,
    sources: Mapping[str, str] | None = None,
    namespace: str | None = None,
    limit: int = 5,
) -> list[Hypothesis]:
    """The top `limit` services as ranked hypotheses, most likely first."""
    return [to_hypothesis(s, sources=sources, namespace=namespace) for s in ranking.ranked[:limit]]


def summarise(ranking: RcaRanking) -> str:
    """One plain sentence for the deterministic report."""
    if not ranking.ranked:
        return "No service could be ranked: no metric had a usable baseline."
    top = ranking.ranked[0]
    kind = "unknown kind of fault" if top.fault is FaultType.UNKNOWN else f"{top.fault.value} fault"
    why = [describe_change(c) for c in top.changes[:1]]
    if top.fault in NETWORK_FAULTS:
        why += [describe_edge(e) for e in top.edges[:1]]
    # One metric per family: cpu_usage and cpu_usage_rate tell the same story.
    seen: set[Family] = set()
    for e in supporting_first(top):
        if len(why) >= 2:
            break
        family = family_of(e.metric)
        if e.onset is not None and family not in seen and not is_edge_metric(e.metric):
            seen.add(family)
            why.append(describe_metric(e))
    runner_up = ""
    if len(ranking.ranked) > 1:
        nxt = ranking.ranked[1]
        runner_up = f" Next: {nxt.service} ({nxt.confidence:.0%})."
    because = "; ".join(why) if why else "no single metric stands out"
    return (
        f"{top.service} is the most likely root cause ({kind}, {top.confidence:.0%}): "
        f"{because}.{runner_up}"
    )
