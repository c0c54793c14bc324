"""Which cluster changes the investigation treats as suspects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiops.agent.cluster import ClusterFacts, change_events
from aiops.agent.ports import EventInfo, PodInfo, ReplicaSetInfo
from aiops.rca import ChangeKind

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _rs(
    name: str, revision: int, age_min: float, replicas: int, release: str | None = None
) -> ReplicaSetInfo:
    return ReplicaSetInfo(
        name=name,
        namespace="shop",
        deployment="cartservice",
        revision=revision,
        created_at=NOW - timedelta(minutes=age_min),
        images=[f"shop/cart:{revision}"],
        replicas=replicas,
        release=release,
    )


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


def test_a_restart_or_a_release_that_ran_before_is_no_suspect() -> None:
    # An aiops restart (revision 2, same release as 1), then a bad release (3), then a rollback
    # that brought the restart's ReplicaSet back as revision 4: only revision 3 was new, and it
    # runs no pod any more.
    facts = ClusterFacts(
        replicasets=[
            _rs("cart-v1", 1, 600, 0, release="good"),
            _rs("cart-restarted", 4, 20, 2, release="good"),
            _rs("cart-bad", 3, 10, 0, release="bad"),
        ]
    )
    assert _rollouts(facts) == []
    # A restart alone is no release either; a new release after it is.
    restarted = [
        _rs("cart-v1", 1, 600, 0, release="good"),
        _rs("cart-restarted", 2, 20, 2, release="good"),
    ]
    assert _rollouts(ClusterFacts(replicasets=restarted)) == []
    assert _rollouts(
        ClusterFacts(
            replicasets=[
                *restarted[:1],
                restarted[1].model_copy(update={"replicas": 0}),
                _rs("cart-v2", 3, 5, 2, release="v2"),
            ]
        )
    ) == ["ReplicaSet/shop/cart-v2"]


def test_back_offs_of_pods_that_are_gone_are_no_crash_loop() -> None:
    def back_off(pod: str) -> EventInfo:
        return EventInfo(
            namespace="shop",
            reason="BackOff",
            object_kind="Pod",
            object_name=pod,
            message="Back-off restarting failed container",
            count=9,
            last_at=NOW - timedelta(minutes=8),
        )

    now_running = PodInfo(
        name="cartservice-6c9d-abcde",
        namespace="shop",
        owner_kind="ReplicaSet",
        owner_name="cartservice-6c9d",
    )
    facts = ClusterFacts(
        pods=[now_running],
        events=[
            back_off("cartservice-5b8f-zzzzz"),  # rolled back since
            back_off("cartservice-6c9d-abcde"),
        ],
    )
    events = change_events(facts, "shop", {}, since=NOW - timedelta(hours=1), until=NOW)
    assert [e.source for e in events if e.kind is ChangeKind.RESTART] == [
        "Pod/shop/cartservice-6c9d-abcde"
    ]
