"""Nodes ranked against their peers, and the workloads placed on them."""

from __future__ import annotations

import numpy as np

from aiops.rca import MetricEvidence, MetricsMatrix, RcaRanking, ScoringConfig, ServiceScore
from aiops.rca.nodes import rank_nodes

T0 = 1_800_000_000.0
AT = T0 + 3.0 * 110
PLACEMENT = {"cart": ["node-a"], "redis": ["node-a"], "frontend": ["node-b"]}
SCORING = ScoringConfig(rel_floor=0.05)


def busy(levels: dict[str, tuple[float, float]]) -> MetricsMatrix:
    """node_cpu_busy per node at 3 s steps: 110 rows at `before`, then 10 at `after`."""
    rng = np.random.default_rng(0)
    series = {}
    for node, (before, after) in levels.items():
        v = before * (1 + 0.01 * rng.standard_normal(120))
        v[110:] = after * (1 + 0.01 * rng.standard_normal(10))
        series[f"{node}_node_cpu_busy"] = v.tolist()
    return MetricsMatrix.from_series([T0 + 3.0 * i for i in range(120)], series)


def service(name: str, *, cpu_peer: float = 0.0, latency_peer: float = 0.0) -> ServiceScore:
    evidence = [
        MetricEvidence(
            column=f"{name}_{metric}",
            metric=metric,
            score=20.0,
            direction=1,
            baseline=1.0,
            scale=0.1,
            value=3.0,
            peer_score=peer,
        )
        for metric, peer in (("cpu_usage", cpu_peer), ("latency_p99", latency_peer))
        if peer
    ]
    return ServiceScore(service=name, score=5.0, confidence=0.3, evidence=evidence)


def ranking(*services: ServiceScore) -> RcaRanking:
    return RcaRanking(anomaly_time=AT, alarm_time=AT, ranked=list(services))


def test_the_node_that_departed_alone_comes_first_with_its_degraded_workloads() -> None:
    nodes = busy({"node-a": (0.2, 0.9), "node-b": (0.2, 0.2), "node-c": (0.25, 0.25)})
    degraded = ranking(service("cart", latency_peer=5.0), service("redis", latency_peer=4.0))
    blames = rank_nodes(
        nodes, AT, placement=PLACEMENT, ranking=degraded, unhealthy={}, scoring=SCORING
    )
    top = blames[0]
    assert (top.node, top.hog) == ("node-a", None)
    assert [e.metric for e in top.metrics] == ["node_cpu_busy"]
    assert top.metrics[0].value > 0.8
    assert sorted(top.workloads) == ["cart", "redis"]
    assert {b.node for b in blames} == {"node-a", "node-b", "node-c"}
    assert not blames[1].metrics


def test_a_workload_burning_its_own_cpu_is_the_cause_its_node_the_victim() -> None:
    nodes = busy({"node-a": (0.2, 0.6), "node-b": (0.2, 0.2)})
    hot = ranking(service("cart", cpu_peer=8.0), service("redis", latency_peer=2.0))
    top = rank_nodes(nodes, AT, placement=PLACEMENT, ranking=hot, unhealthy={}, scoring=SCORING)[0]
    assert top.node == "node-a"
    assert top.hog is not None and top.hog.service == "cart"


def test_every_node_busier_singles_none_out_and_a_condition_comes_first() -> None:
    nodes = busy({"node-a": (0.2, 0.5), "node-b": (0.2, 0.5), "node-c": (0.2, 0.5)})
    blames = rank_nodes(
        nodes,
        AT,
        placement=PLACEMENT,
        ranking=None,
        unhealthy={"node-c": "MemoryPressure=True"},
        flagged=["node-b"],
        scoring=SCORING,
    )
    assert [b.node for b in blames[:2]] == ["node-c", "node-b"]
    assert blames[0].why == "MemoryPressure=True"


def test_a_quiet_service_on_a_node_that_barely_moved_does_not_blame_the_node() -> None:
    # A latency blip of shippingservice during a traffic spike: its own metrics stand out less
    # than its node's CPU, which went from 9 % to 11 % (its robust z is large: the node is
    # quiet). The service's fault reads "node", but the node neither departed materially nor
    # is unhealthy: blamed, it was cordoned and drained on a control. A node that is busy, or
    # unhealthy, is still the suspect.
    from aiops.domain import FaultType
    from aiops.rca.nodes import node_suspect

    shipping = service("shipping", latency_peer=1.0).model_copy(update={"fault": FaultType.NODE})
    placement = {"shipping": ["node-c"], "frontend": ["node-b"]}
    quiet = busy({"node-b": (0.09, 0.09), "node-c": (0.093, 0.113)})
    hot = busy({"node-b": (0.09, 0.09), "node-c": (0.093, 0.6)})
    assert node_suspect(ranking(shipping), placement, {}, quiet, SCORING) is None
    assert node_suspect(ranking(shipping), placement, {}, hot, SCORING).node == "node-c"
    sick = node_suspect(ranking(shipping), placement, {"node-c": "NotReady"}, quiet, SCORING)
    assert sick is not None and sick.node == "node-c"


def _metric(svc: str, metric: str, before: float, after: float, score: float) -> MetricEvidence:
    return MetricEvidence(
        column=f"{svc}_{metric}",
        metric=metric,
        score=score,
        direction=1,
        baseline=before,
        scale=0.01,
        value=after,
        peer_score=2.0,
    )


def test_busier_services_after_a_surge_do_not_blame_the_node_they_share() -> None:
    """Seen live (frontend-traffic-surge, the late anomalies' investigation): the services
    downstream of the surge served 1.5x their requests, four of them on node-c, whose CPU went
    from 12 % to 17 %; one had been rolled back earlier. More requests counted as "degraded",
    the small rise of their node as its evidence: node-c was cordoned and drained. Busier is
    not degraded, a loaded service's node rise is its load's, and 5 points of CPU are no node
    fault. The same services truly degraded on a node that truly rose still blame it."""
    from aiops.domain import FaultType
    from aiops.rca import ChangeEvidence
    from aiops.rca.models import ChangeKind
    from aiops.rca.nodes import node_suspect

    def svc(name: str, *metrics: MetricEvidence, changed: bool = False) -> ServiceScore:
        changes = (
            [
                ChangeEvidence(
                    kind=ChangeKind.ROLLOUT,
                    at=AT - 600,
                    source=f"Deployment/{name}",
                    detail="scale",
                    bonus=0.4,
                )
            ]
            if changed
            else []
        )
        return ServiceScore(
            service=name, score=1.0, confidence=0.04, evidence=list(metrics), changes=changes
        )

    def node_of(name: str, before: float, after: float) -> MetricEvidence:
        return _metric(name, "node_cpu_busy", before, after, 10.0)

    frontend = ServiceScore(
        service="frontend",
        score=9.0,
        confidence=0.76,
        fault=FaultType.TRAFFIC_SURGE,
        evidence=[
            _metric("frontend", "requests_rate", 49.9, 76.0, 10.5),
            _metric("frontend", "latency_p99", 0.098, 0.98, 8.0),
        ],
    )
    busier = ranking(
        frontend,
        svc(
            "adservice",
            _metric("adservice", "requests_rate", 25, 38.5, 10.9),
            node_of("adservice", 0.117, 0.175),
        ),
        svc("checkoutservice", changed=True),
        svc(
            "redis-cart",
            _metric("redis-cart", "requests_rate", 35, 54, 10.6),
            node_of("redis-cart", 0.093, 0.214),
        ),
        svc("shippingservice", _metric("shippingservice", "requests_rate", 17, 26, 10.0)),
    )
    placement = {
        "frontend": ["node-a", "node-c"],
        "adservice": ["node-c"],
        "checkoutservice": ["node-c"],
        "redis-cart": ["node-c"],
        "shippingservice": ["node-c"],
        "currencyservice": ["node-a"],
    }
    nodes = busy({"node-a": (0.1, 0.13), "node-b": (0.1, 0.1), "node-c": (0.117, 0.175)})
    assert node_suspect(busier, placement, {}, nodes, SCORING) is None

    def slow(name: str, node_after: float) -> ServiceScore:
        return svc(
            name,
            _metric(name, "latency_p99", 0.02, 0.2, 12.0),
            node_of(name, 0.1, node_after),
        )

    pressured = ranking(
        slow("adservice", 0.6), slow("redis-cart", 0.6), slow("shippingservice", 0.6)
    )
    hot = busy({"node-a": (0.1, 0.1), "node-b": (0.1, 0.1), "node-c": (0.1, 0.6)})
    suspect = node_suspect(pressured, placement, {}, hot, SCORING)
    assert suspect is not None and suspect.node == "node-c"
