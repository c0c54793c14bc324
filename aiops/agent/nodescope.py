"""Incidents about nodes: opened by a node's own anomalies (no namespace), investigated as such.

The detector groups node-level series (no namespace label) into one cluster-scope incident. Its
investigation looks at the namespace that runs most pods on the flagged node(s), ranks every node
against its peers and the workloads placed on the flagged one against each other, and names the
node first unless one of its workloads burns CPU or memory itself (a hog heats its host; then the
workload is the cause and the node its victim).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiops.agent.ports import MetricsSource
from aiops.domain import Anomaly, Hypothesis, Incident
from aiops.rca import MetricsMatrix, RcaRanking, ScoringConfig, to_hypothesis
from aiops.rca.nodes import NodeBlame, node_hypothesis, rank_nodes

# Labels a node-level series names its node by (node_exporter's instance is host:port).
NODE_LABELS = ("node", "kubernetes_node", "instance")
PLACEMENT = "count by (namespace, node, host_ip) (kube_pod_info)"


@dataclass(frozen=True)
class NodeScope:
    nodes: list[str]  # the nodes the incident's anomalies are about
    namespace: str | None  # the namespace running most pods on them
    notes: list[str] = field(default_factory=list)


def node_hosts(incident: Incident) -> set[str]:
    """Hosts the incident's anomalies name (node names, or node_exporter instance hosts)."""
    return {host for a in incident.anomalies for host in node_hosts_of(a)}


def node_hosts_of(anomaly: Anomaly) -> set[str]:
    for key in NODE_LABELS:
        value = anomaly.series.get(key, "")
        if value:
            return {value.rsplit(":", 1)[0] if key == "instance" else value}
    return set()


def resolve(incident: Incident, source: MetricsSource, at: datetime) -> NodeScope | None:
    """The node scope of an incident without a namespace whose anomalies name hosts; None for
    any other incident. One query: which pods run where (kube-state-metrics' kube_pod_info)."""
    if incident.namespace:
        return None
    hosts = node_hosts(incident)
    if not hosts:
        return None
    try:
        series = source.query_range(PLACEMENT, at - timedelta(minutes=5), at, 60.0)
    except Exception as exc:
        note = f"could not read where pods run ({exc}); node {', '.join(sorted(hosts))} alone"
        return NodeScope(sorted(hosts), None, [note])
    ip_to_node = {
        s.labels["host_ip"]: s.labels["node"]
        for s in series
        if s.labels.get("host_ip") and s.labels.get("node")
    }
    nodes = sorted({ip_to_node.get(h, h) for h in hosts})
    pods: Counter[str] = Counter()
    for s in series:
        if s.labels.get("node") in nodes and s.labels.get("namespace"):
            pods[s.labels["namespace"]] += int(max(s.values, default=0.0))
    ranked = pods.most_common()
    notes = [f"node-scope incident about {', '.join(nodes)}"]
    if len(ranked) > 1:
        others = ", ".join(f"{ns} ({n})" for ns, n in ranked[1:4])
        notes.append(f"workloads ranked in {ranked[0][0]}, the namespace with most pods there; "
                     f"also on it: {others}")  # fmt: skip
    return NodeScope(nodes, ranked[0][0] if ranked else None, notes)


def node_report(
    scope: NodeScope,
    ranking: RcaRanking,
    *,
    nodes: MetricsMatrix | None,
    at: float,
    placement: Mapping[str, Sequence[str]],
    unhealthy: Mapping[str, str],
    sources: Mapping[str, Mapping[str, str]],
    workload_sources: Mapping[str, str],
    namespace: str | None,
    scoring: ScoringConfig,
    limit: int,
) -> tuple[list[Hypothesis], str]:
    """Hypotheses (node or its hog first, then the other nodes' suspects and workloads) and the
    summary sentence."""
    blames = rank_nodes(
        nodes,
        at,
        placement=placement,
        ranking=ranking,
        unhealthy=unhealthy,
        flagged=scope.nodes,
        scoring=scoring,
    )
    top = blames[0] if blames else NodeBlame(scope.nodes[0], 0.0)
    # As sure as the evidence singles the node out: one suspect among the flagged nodes (or among
    # all, when none of the flagged moved) is a sure call, two are a coin toss; a node with
    # neither a departure nor a condition is a weak guess.
    suspects = [b for b in blames if b.metrics or b.why]
    suspects = [b for b in suspects if b.node in scope.nodes] or suspects
    confidence = 1.0 / len(suspects) if top in suspects else 0.5
    node_hyp = node_hypothesis(
        top,
        ranking,
        sources=sources.get(top.node, {}),
        namespace=namespace,
        confidence=confidence,
    )
    workloads = [
        to_hypothesis(s, sources=workload_sources, namespace=namespace)
        for s in ranking.ranked[:limit]
    ]
    if top.hog is not None:
        first = to_hypothesis(top.hog, sources=workload_sources, namespace=namespace)
        rest = [h for h in workloads if h.target != first.target]
        summary = (
            f"{top.hog.service} is the most likely root cause ({top.hog.fault.value} fault): "
            f"it burns its own resources on node {top.node}, whose utilisation rose with it."
        )
        return [first, node_hyp, *rest][:limit], summary
    facts = "; ".join(e.summary for e in node_hyp.evidence[:2]) or "flagged by the detector"
    peers = [b.node for b in blames[1:]]
    summary = (
        f"Node {top.node} is the most likely root cause (node fault, {confidence:.0%}): {facts}"
        + (f"; its peers {', '.join(peers)} did not move" if peers and len(suspects) == 1 else "")
        + "."
    )
    return [node_hyp, *workloads][:limit], summary
