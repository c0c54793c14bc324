"""Rules the live lab asked for: the query step near the alarm, and a node that runs hot alone."""

from __future__ import annotations

import numpy as np

from aiops.agent.cluster import ClusterFacts
from aiops.agent.graph import LIVE_RANK, AgentConfig, AgentDeps, _node_suspect, query_step
from aiops.agent.metrics import GatheredMetrics
from aiops.domain import FaultType
from aiops.rca import (
    ChangeEvidence,
    ChangeKind,
    MetricsMatrix,
    RcaRanking,
    ServiceScore,
)
from aiops.rca.nodes import NodeSuspect, hot_node

T0 = 1_800_000_000.0


def test_step_shrinks_when_the_investigation_starts_right_after_the_alarm() -> None:
    cfg = AgentConfig()  # 15 s steps, 8 rows wanted after the anomaly
    assert query_step(600.0, cfg) == 15.0
    assert query_step(120.0, cfg) == 15.0
    assert query_step(25.0, cfg) == 3.0  # 8 rows of 3 s in 25 s
    assert query_step(4.0, cfg) == 1.0  # never below a second
    assert query_step(-2.0, cfg) == 1.0  # a clock a little behind the alarm


def nodes(busy: dict[str, tuple[float, float]], rows: int = 120, after: int = 10) -> MetricsMatrix:
    """node_cpu_busy per node at 3 s steps: `before` level, then `after` rows at the new one."""
    rng = np.random.default_rng(0)
    series = {}
    for node, (before, now) in busy.items():
        v = before * (1 + 0.01 * rng.standard_normal(rows))
        v[rows - after :] = now * (1 + 0.01 * rng.standard_normal(after))
        series[f"{node}_node_cpu_busy"] = v.tolist()
    return MetricsMatrix.from_series([T0 + 3.0 * i for i in range(rows)], series)


def test_one_node_that_runs_hot_while_the_others_do_not_is_found() -> None:
    at = T0 + 3.0 * 110
    m = nodes({"node-a": (0.12, 0.39), "node-b": (0.13, 0.12), "node-c": (0.11, 0.10)})
    assert hot_node(m, at, LIVE_RANK.scoring) == ("node-a", ["node_cpu_busy"])


def test_small_moves_and_shared_load_blame_no_node() -> None:
    at = T0 + 3.0 * 110
    # 10 % -> 11.5 % busy: many sigmas on a smooth series, but not material.
    small = nodes({"node-a": (0.10, 0.115), "node-b": (0.13, 0.13), "node-c": (0.11, 0.11)})
    assert hot_node(small, at, LIVE_RANK.scoring) is None
    # Every node busier (more traffic): no single node is to blame.
    shared = nodes({"node-a": (0.1, 0.3), "node-b": (0.1, 0.3), "node-c": (0.1, 0.3)})
    assert hot_node(shared, at, LIVE_RANK.scoring) is None
    assert hot_node(None, at, LIVE_RANK.scoring) is None


def test_a_hot_node_does_not_take_the_blame_from_a_release() -> None:
    """The lab under load: cart's bad release, and its node busier at the same time (new pods
    starting). The release explains cart's errors; the node is no suspect."""
    at = T0 + 3.0 * 110
    hot = nodes({"node-a": (0.12, 0.39), "node-b": (0.13, 0.12)})
    metrics = GatheredMetrics(
        matrix=None,
        sources={},
        call_graph=[],
        placement={"cart": ["node-a"], "frontend": ["node-b"]},
        node_columns={},
        node_matrix=hot,
    )
    release = ChangeEvidence(
        kind=ChangeKind.ROLLOUT,
        at=at - 5,
        source="ReplicaSet/shop/cart-2",
        detail="revision 2",
        bonus=3.0,
    )

    def suspect(fault: FaultType) -> NodeSuspect | None:
        top = ServiceScore(
            service="cart", score=10.0, confidence=0.9, fault=fault, changes=[release]
        )
        ranking = RcaRanking(anomaly_time=at, alarm_time=at, ranked=[top], notes=[])
        state = {"metrics": metrics, "cluster": ClusterFacts()}
        return _node_suspect(AgentDeps(metrics=None), state, ranking)  # type: ignore[arg-type]

    assert suspect(FaultType.BAD_ROLLOUT) is None
    assert suspect(FaultType.ERRORS) == NodeSuspect("node-a", ["cart"])  # the rule still works
