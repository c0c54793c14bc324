"""Which cluster changes the investigation treats as suspects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiops.agent.cluster import ClusterFacts, change_events
from aiops.agent.ports import ReplicaSetInfo
from aiops.rca import ChangeKind

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _rs(name: str, revision: int, age_min: float, replicas: int) -> ReplicaSetInfo:
    return ReplicaSetInfo(name=name, namespace="shop", deployment="cartservice",
                          revision=revision, created_at=NOW - timedelta(minutes=age_min),
                          images=[f"shop/cart:{revision}"], replicas=replicas)


def _rollouts(facts: ClusterFacts) -> list[str]:
    events = change_events(facts, "shop", {}, since=NOW - timedelta(hours=1), until=NOW)
    return [e.source for e in events if e.kind is ChangeKind.ROLLOUT]


def test_a_release_that_still_runs_is_a_suspect() -> None:
    facts = ClusterFacts(replicasets=[_rs("cart-old", 1, 600, 0), _rs("cart-new", 2, 10, 2)])
    assert _rollouts(facts) == ["ReplicaSet/shop/cart-new"]


def test_a_release_rolled_back_since_is_no_suspect() -> None:
    # `rollout undo` scaled the new ReplicaSet to zero and the old one (now revision 3) back up:
    # the bad release ran ten minutes ago but blaming it for later faults would be wrong.
    facts = ClusterFacts(replicasets=[_rs("cart-old", 3, 600, 2), _rs("cart-new", 2, 10, 0)])
    assert _rollouts(facts) == []
