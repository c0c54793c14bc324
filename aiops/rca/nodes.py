"""Nodes in the root-cause graph: when the fault is the host, not a workload on it.

Two questions, both pure (rankings, placement and node metrics in; a decision out):

* a namespace incident: do the degraded workloads point at one node (its conditions, its own
  utilisation, or the one host they share while workloads elsewhere are fine)? `node_suspect`.
* a node-scope incident (opened by a node's own anomalies): which node departed against its peers,
  and is one of the workloads placed on it the real cause (a CPU hog heats its node)?
  `rank_nodes`.

Node metrics are `<node>_<metric>` columns (`node_cpu_busy`, `node_memory_used`, shares of the
node's capacity), as the agent gathers them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from aiops.domain import Evidence, FaultType, Hypothesis
from aiops.rca.classify import Family, family_of
from aiops.rca.models import (
    ChangeKind,
    MetricEvidence,
    MetricsMatrix,
    RcaInputError,
    RcaRanking,
    ServiceScore,
    metric_of,
    service_of,
)
from aiops.rca.rank import LOAD_EXPLAINS
from aiops.rca.scoring import ScoringConfig, score_metrics

# The shared-node rule blames a node only while no single service stands out this clearly.
NODE_RULE_MAX_TOP = 0.8
# node_* metrics are shares of the node's capacity (CPU busy, memory used): a node is a suspect
# only when one of them rose by at least this many points of capacity.
NODE_MIN_RISE = 0.1
ONSET_Z = 3.0


@dataclass(frozen=True)
class NodeSuspect:
    node: str
    services: list[str]  # the degraded workloads placed on it


def node_suspect(
    ranking: RcaRanking,
    placement: Mapping[str, Sequence[str]],
    unhealthy: Mapping[str, str],
    nodes: MetricsMatrix | None,
    scoring: ScoringConfig,
) -> NodeSuspect | None:
    """The node to blame, with its degraded services, when a namespace's evidence points at one.

    `placement`: workload → nodes its pods ran on; `unhealthy`: node → why (conditions, cordon).
    """
    if not ranking.ranked:
        return None
    top = ranking.ranked[0]
    for c in top.changes:
        if c.kind is ChangeKind.CORDON and c.source.startswith("Node/"):
            node = c.source.split("/", 1)[1]
            return NodeSuspect(
                node, [s.service for s in ranking.ranked if node in placement.get(s.service, ())]
            )
    hosts = list(placement.get(top.service, []))
    degraded = [s for s in ranking.ranked[:5] if departed(s)]
    # The top service's own metrics stand out less than its node's: the node is to blame only
    # when it is unhealthy or its utilisation rose materially (NODE_MIN_RISE). A quiet service
    # on a node whose CPU went from 9 % to 11 % is no node fault: blamed as one, a latency
    # blip during a traffic spike cordoned and drained a healthy node.
    moved = _moved_nodes(nodes, ranking.anomaly_time, scoring)  # scored once, used twice
    # A service serving LOAD_EXPLAINS times its normal load warms its node itself: only the
    # node's health can blame the node then.
    suspects = [n for n in hosts if n in unhealthy] or (
        [] if loaded(top) else [n for n in hosts if n in moved]
    )
    if top.fault is FaultType.NODE and suspects:
        node = max(suspects, key=lambda n: sum(n in placement.get(s.service, ()) for s in degraded))
        return NodeSuspect(
            node, [s.service for s in degraded if node in placement.get(s.service, ())]
        )
    # A release or a crash loop of the top service explains its own symptoms; its new pods
    # starting up may well warm the node they land on.
    released = top.fault in (FaultType.BAD_ROLLOUT, FaultType.CRASHLOOP)
    hot = None if released else _alone(moved)
    if hot is not None:
        node = hot[0]
        on_node = [s for s in ranking.ranked if node in placement.get(s.service, ())]
        if any(departed(s) for s in on_node) and not any(hog(s) for s in on_node):
            return NodeSuspect(node, [s.service for s in on_node if departed(s)])
    # Several degraded services that share exactly one node, which is unhealthy or whose metrics
    # departed, while services elsewhere are fine, and no single service stands out (a CPU hog
    # heats its node too: then the hog is the cause).
    if len(degraded) < 2 or len({n for ns in placement.values() for n in ns}) < 2:
        return None
    if top.confidence >= NODE_RULE_MAX_TOP and not (set(hosts) & set(unhealthy)):
        return None
    common = set(placement.get(degraded[0].service, []))
    for s in degraded[1:]:
        common &= set(placement.get(s.service, []))
    if len(common) != 1:
        return None
    node = next(iter(common))
    # As for the top service's node: the rise is material (NODE_MIN_RISE), and a service under
    # extra load does not speak for its node. Seen live: after a traffic surge, five busier
    # services sharing node-c, whose CPU went from 12 % to 17 %, had node-c cordoned and drained.
    node_metrics_moved = any(
        e.metric.startswith("node_")
        and e.score >= ONSET_Z
        and e.direction > 0
        and e.value - e.baseline >= NODE_MIN_RISE
        for s in degraded
        if not loaded(s)
        for e in s.evidence
    )
    if node in unhealthy or node_metrics_moved:
        return NodeSuspect(node, [s.service for s in degraded])
    return None


def hot_node(
    nodes: MetricsMatrix | None, at: float, scoring: ScoringConfig
) -> tuple[str, list[str]] | None:
    """The one node whose own utilisation (node_* metrics) departed upwards at `at` while every
    other node stayed put, with the metrics that did; None when none or several did."""
    hot = _alone(_moved_nodes(nodes, at, scoring))
    return None if hot is None else (hot[0], [e.metric for e in hot[1]])


def _alone(
    moved: dict[str, list[MetricEvidence]],
) -> tuple[str, list[MetricEvidence]] | None:
    """The node that moved, when it moved alone."""
    return next(iter(moved.items())) if len(moved) == 1 else None


def _moved_nodes(
    nodes: MetricsMatrix | None, at: float, scoring: ScoringConfig
) -> dict[str, list[MetricEvidence]]:
    """node → its node_* metrics that rose materially (NODE_MIN_RISE points) and clearly."""
    if nodes is None or len(nodes.services) < 2:
        return {}
    try:
        scores = score_metrics(nodes, at, scoring)
    except RcaInputError:
        return {}
    moved: dict[str, list[MetricEvidence]] = {}
    for j, column in enumerate(nodes.columns):
        base, value = float(scores.baseline[j]), float(scores.value[j])
        if (
            scores.score[j] >= scoring.onset_z
            and scores.direction[j] > 0
            and value - base >= NODE_MIN_RISE
        ):
            onset = float(scores.onset[j])
            moved.setdefault(service_of(column), []).append(
                MetricEvidence(
                    column=column,
                    metric=metric_of(column),
                    score=float(scores.score[j]),
                    direction=1,
                    baseline=base,
                    scale=float(scores.scale[j]),
                    value=value,
                    onset=onset if math.isfinite(onset) else None,
                    peer_score=float(scores.peer[j]) if math.isfinite(scores.peer[j]) else 0.0,
                )
            )
    return moved


def hog(s: ServiceScore) -> bool:
    """The workload's own CPU or memory rose clearly: it heats its node, the node is a victim."""
    return any(
        family_of(e.metric) in (Family.CPU, Family.MEMORY)
        and e.direction > 0
        and e.score >= ONSET_Z
        and e.peer_score >= 2.0
        for e in s.evidence
    )


def departed(s: ServiceScore) -> bool:
    """The service itself is degraded: one of its own metrics departed, or it changed. More
    requests are no degradation, nor is its node's utilisation (that is the node's evidence)."""
    return any(
        e.score >= ONSET_Z
        and e.peer_score >= 1.0
        and family_of(e.metric) not in (Family.TRAFFIC, Family.NODE)
        for e in s.evidence
    ) or bool(s.changes)


def loaded(s: ServiceScore) -> bool:
    """The service serves LOAD_EXPLAINS times its normal request rate or more."""
    return any(
        family_of(e.metric) is Family.TRAFFIC
        and e.direction > 0
        and e.baseline > 0
        and e.value >= LOAD_EXPLAINS * e.baseline
        for e in s.evidence
    )


@dataclass(frozen=True)
class NodeBlame:
    """A node ranked against its peers, with what is placed on it."""

    node: str
    score: float  # its strongest node metric's departure (robust z); 0 when none departed
    metrics: list[MetricEvidence] = field(default_factory=list)
    why: str | None = None  # unhealthy: its conditions, cordon
    workloads: list[str] = field(default_factory=list)  # degraded workloads placed on it
    hog: ServiceScore | None = None  # a workload on it whose own CPU/memory rose: the cause


def rank_nodes(
    nodes: MetricsMatrix | None,
    at: float,
    *,
    placement: Mapping[str, Sequence[str]],
    ranking: RcaRanking | None,
    unhealthy: Mapping[str, str],
    flagged: Collection[str] = (),
    scoring: ScoringConfig | None = None,
) -> list[NodeBlame]:
    """Nodes most likely at fault first: the ones whose own utilisation departed while their
    peers' did not, unhealthy ones, those a detector flagged; each with its degraded workloads
    and, when one of them burns CPU or memory itself, that workload (a hog heats its host)."""
    moved = _moved_nodes(nodes, at, scoring or ScoringConfig())
    names = set(moved) | set(unhealthy) | set(flagged)
    names |= set(nodes.services) if nodes is not None else set()
    by_service = {s.service: s for s in (ranking.ranked if ranking else [])}
    out = []
    for node in names:
        on_node = [s for svc, ns in placement.items() if node in ns for s in [by_service.get(svc)]]
        placed = [s for s in on_node if s is not None]
        hogs = [s for s in placed if hog(s)]
        evidence = sorted(moved.get(node, []), key=lambda e: -e.score)
        out.append(
            NodeBlame(
                node=node,
                score=evidence[0].score if evidence else 0.0,
                metrics=evidence,
                why=unhealthy.get(node),
                workloads=[s.service for s in placed if departed(s)],
                hog=max(hogs, key=lambda s: s.score) if hogs else None,
            )
        )
    # A node stands out only against its peers: when every node moved alike (more traffic),
    # none of them is more suspect than another, and the order falls back to health and flags.
    shared = len(moved) > 1 and len(moved) == len(names)
    return sorted(
        out,
        key=lambda b: (
            -(b.why is not None),
            -(b.node in flagged and bool(b.metrics) and not shared),
            -(0.0 if shared else min(b.score, 1e6)),
            -(b.node in flagged),
            -len(b.workloads),
            b.node,
        ),
    )


def node_hypothesis(
    blame: NodeBlame | NodeSuspect,
    ranking: RcaRanking,
    *,
    why: str | None = None,
    sources: Mapping[str, str] | None = None,
    namespace: str | None = None,
    confidence: float | None = None,
) -> Hypothesis:
    """The node as a hypothesis, citing its condition, its metrics and its degraded workloads."""
    node = blame.node
    services = blame.workloads if isinstance(blame, NodeBlame) else blame.services
    evidence: list[Evidence] = []
    why = why or (blame.why if isinstance(blame, NodeBlame) else None)
    if why:
        evidence.append(Evidence(kind="node", summary=f"node {node}: {why}", source=f"Node/{node}"))
    src = sources or {}
    by_service = {s.service: s for s in ranking.ranked}
    cited: set[str] = set()
    own = blame.metrics if isinstance(blame, NodeBlame) else []
    seen = [e for e in own] + [
        e for svc in services if svc in by_service for e in by_service[svc].evidence
    ]
    for e in seen:
        if e.metric.startswith("node_") and e.score >= ONSET_Z and e.metric not in cited:
            cited.add(e.metric)
            evidence.append(
                Evidence(
                    kind="metric",
                    summary=f"{e.metric} of {node} went from {e.baseline:.3g} to {e.value:.3g}",
                    source=src.get(e.metric, e.metric),
                    value=e.value,
                    baseline=e.baseline,
                )
            )
    if services:
        evidence.append(
            Evidence(
                kind="topology",
                summary=f"degraded workloads on {node}: {', '.join(services)}",
                source=f"Node/{node}",
            )
        )
    if confidence is None:
        confidence = min(1.0, sum(by_service[s].confidence for s in services if s in by_service))
    return Hypothesis(
        target=node,
        target_kind="Node",
        namespace=namespace,
        fault=FaultType.NODE,
        confidence=round(confidence, 4),
        evidence=evidence[:6],
    )
