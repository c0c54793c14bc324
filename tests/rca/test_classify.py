"""Fault type from evidence: metric names from different exporters, and change events."""

from __future__ import annotations

import pytest

from aiops.domain import FaultType
from aiops.rca import ChangeEvidence, ChangeKind, MetricEvidence, classify, family_of


def ev(metric: str, peer: float, direction: int = 1, ratio: float | None = 1.5) -> MetricEvidence:
    return MetricEvidence(
        column=f"svc_{metric}",
        metric=metric,
        score=50.0,
        direction=direction,
        baseline=1.0,
        scale=0.1,
        value=2.0,
        ratio=ratio,
        peer_score=peer,
    )


def change(kind: ChangeKind) -> ChangeEvidence:
    return ChangeEvidence(kind=kind, at=0.0, source="x", detail="", bonus=1.0)


@pytest.mark.parametrize(
    ("metric", "family"),
    [
        ("cpu_usage_rate", "cpu"),
        ("cpu", "cpu"),
        ("memory_usage", "memory"),
        ("mem", "memory"),
        ("container_memory_working_set_bytes", "memory"),
        ("pod_server_latency_p90", "latency"),
        ("lat_99", "latency"),
        ("request_duration_seconds", "latency"),
        ("pod_success_rate", "errors"),
        ("http_errors_total", "errors"),
        ("kube_pod_container_status_restarts_total", "restarts"),
        ("node_cpu_usage_rate", "node"),
        ("pod_workload", "traffic"),
        ("network_receive_bytes", "other"),
    ],
)
def test_metric_families(metric: str, family: str) -> None:
    assert family_of(metric).value == family


def test_cpu_saturation_wins_over_the_latency_it_causes() -> None:
    assert classify([ev("pod_server_latency_p90", 60), ev("cpu_usage_rate", 20)]) is FaultType.CPU


def test_latency_alone_is_latency() -> None:
    assert classify([ev("pod_server_latency_p90", 10), ev("cpu_usage", 1)]) is FaultType.LATENCY


def test_memory_needs_real_growth() -> None:
    # Memory standing out but barely grown (CPU stress touches memory a little): CPU.
    assert classify([ev("memory_usage", 30, ratio=1.3), ev("cpu_usage", 20)]) is FaultType.CPU
    assert classify([ev("cpu_usage", 30), ev("memory_usage", 5, ratio=3.0)]) is FaultType.MEMORY


def test_errors_need_the_bad_direction() -> None:
    assert classify([ev("success_rate", 10, direction=-1)]) is FaultType.ERRORS
    assert classify([ev("success_rate", 10, direction=+1)]) is not FaultType.ERRORS


def test_traffic_surge() -> None:
    surge = [ev("pod_workload", 10, ratio=2.0), ev("latency_p90", 4)]
    assert classify(surge) is FaultType.TRAFFIC_SURGE


@pytest.mark.parametrize(
    ("kinds", "fault"),
    [
        ([ChangeKind.ROLLOUT], FaultType.BAD_ROLLOUT),
        ([ChangeKind.CONFIG_CHANGE], FaultType.BAD_ROLLOUT),
        ([ChangeKind.OOM_KILL], FaultType.MEMORY),
        ([ChangeKind.CORDON], FaultType.NODE),
        ([ChangeKind.RESTART, ChangeKind.RESTART], FaultType.CRASHLOOP),
    ],
)
def test_changes_decide_the_type(kinds: list[ChangeKind], fault: FaultType) -> None:
    assert classify([ev("latency_p90", 5)], [change(k) for k in kinds]) is fault


def test_nothing_known_is_unknown() -> None:
    assert classify([]) is FaultType.UNKNOWN


def test_outbound_only_latency_or_errors_is_a_dependency() -> None:
    client = [ev("pod_client_latency_p90", 10), ev("cpu_usage", 1)]
    assert classify(client) is FaultType.DEPENDENCY
    both = [ev("pod_client_latency_p90", 10), ev("pod_server_latency_p90", 9)]
    assert classify(both) is FaultType.LATENCY
    assert classify([ev("upstream_errors_total", 8)]) is FaultType.DEPENDENCY


def test_load_that_grew_more_than_cpu_is_a_traffic_surge() -> None:
    surge = [ev("requests_per_second", 12, ratio=3.0), ev("cpu_usage", 8, ratio=2.0)]
    assert classify(surge) is FaultType.TRAFFIC_SURGE
    hog = [ev("cpu_usage", 12, ratio=20.0), ev("requests_per_second", 6, ratio=1.6)]
    assert classify(hog) is FaultType.CPU


def test_a_crash_loop_after_a_rollout_is_a_crash_loop() -> None:
    # The new revision's containers keep exiting: restarts in the pod statuses outweigh the
    # rollout that brought them (the rollback playbook matches both).
    kinds = [ChangeKind.ROLLOUT, ChangeKind.RESTART, ChangeKind.RESTART]
    assert classify([ev("error_ratio", 5)], [change(k) for k in kinds]) is FaultType.CRASHLOOP
    # OOM kills among the restarts are a memory fault, not a crash loop.
    oom = [ChangeKind.RESTART, ChangeKind.RESTART, ChangeKind.OOM_KILL]
    assert classify([ev("memory_working_set", 5)], [change(k) for k in oom]) is FaultType.MEMORY
    # Or the restart counter that rose, with a single back-off event so far.
    one = [ChangeKind.ROLLOUT, ChangeKind.RESTART]
    counter = [ev("restarts", 90), ev("error_ratio", 5)]
    assert classify(counter, [change(k) for k in one]) is FaultType.CRASHLOOP
    # A rollout with a single restart and no restart counter moving stays a bad rollout.
    assert classify([ev("error_ratio", 5)], [change(k) for k in one]) is FaultType.BAD_ROLLOUT


def test_no_replica_left_is_a_dependency_that_is_down() -> None:
    down = MetricEvidence(
        column="redis_available_replicas",
        metric="available_replicas",
        score=20.0,
        direction=-1,
        baseline=1.0,
        scale=0.05,
        value=0.0,
        ratio=0.0,
        peer_score=30.0,
    )
    assert family_of("available_replicas") == "availability"
    assert classify([down, ev("requests_rate", 15, direction=-1, ratio=0.6)]) is (
        FaultType.DEPENDENCY
    )
    # One replica of three gone is not "down".
    partial = down.model_copy(update={"value": 2.0, "baseline": 3.0, "ratio": 0.67})
    assert classify([partial]) is not FaultType.DEPENDENCY


def test_load_up_by_half_is_a_surge_even_when_latency_stands_out_more() -> None:
    evidence = [
        ev("latency_p99", 34.0, ratio=9.9),
        ev("requests_rate", 5.0, ratio=1.6),
        ev("error_ratio", 9.0, ratio=None),
    ]
    assert classify(evidence) is FaultType.TRAFFIC_SURGE
    # CPU that grew far more than the load is a CPU fault that drew more requests.
    hog = [ev("cpu_usage", 20.0, ratio=4.0), ev("requests_rate", 5.0, ratio=1.6)]
    assert classify(hog) is FaultType.CPU


def test_a_release_long_before_the_departure_does_not_set_the_fault_type() -> None:
    def leak(onset: float) -> list[MetricEvidence]:
        return [ev("memory_working_set", 20, ratio=3.0).model_copy(update={"onset": onset})]

    release = ChangeEvidence(kind=ChangeKind.ROLLOUT, at=1000.0, source="x", detail="", bonus=1.0)
    # Memory departing a minute after the release: the release brought it.
    assert classify(leak(1060.0), [release]) is FaultType.BAD_ROLLOUT
    # Departing six minutes after a release that changed nothing at the time: a leak.
    assert classify(leak(1360.0), [release]) is FaultType.MEMORY


def test_a_metric_that_fell_is_no_fault_of_its_kind() -> None:
    """Live (OpenTelemetry, cart-memory-leak): paymentservice's request rate dipped x0.81 after
    cartservice's restart, alone and not far; read as a traffic surge, a follow-up incident
    scaled the healthy paymentservice."""
    dip = [ev("requests_rate", 3, direction=-1, ratio=0.81)]
    assert classify(dip) is FaultType.UNKNOWN
    assert classify([ev("latency_p99", 3, direction=-1, ratio=0.5)]) is FaultType.UNKNOWN
    assert classify([ev("requests_rate", 3, direction=+1, ratio=1.2)]) is FaultType.TRAFFIC_SURGE
