"""Behaviour of the root-cause ranking on small synthetic incidents."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from aiops.domain import FaultType
from aiops.rca import (
    ChangeEvent,
    ChangeKind,
    MetricEvidence,
    MetricsMatrix,
    RankConfig,
    RcaInputError,
    RcaRanking,
    rank,
)

T0 = 1_700_000_000.0
STEP = 60.0
N_BEFORE = 30
N_AFTER = 10
ANOMALY = T0 + N_BEFORE * STEP
SERVICES = ["frontend", "cart", "payment", "shipping", "email"]
METRICS = {"cpu_usage": 5.0, "memory_usage": 200.0, "latency_p90": 0.05, "success_rate": 99.0}


def base_series(seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every service healthy: each metric noisy around its level (2 % noise)."""
    rng = np.random.default_rng(seed)
    n = N_BEFORE + N_AFTER
    times = T0 + STEP * np.arange(n)
    series = {}
    for s in SERVICES:
        for m, level in METRICS.items():
            series[f"{s}_{m}"] = level * (1 + 0.02 * rng.standard_normal(n))
    return times, series


def shift(series: dict[str, np.ndarray], column: str, factor: float, rows: int = 4) -> None:
    """Multiply `rows` samples from the anomaly time on: a sustained departure."""
    series[column][N_BEFORE : N_BEFORE + rows] *= factor


def matrix(times: np.ndarray, series: dict[str, np.ndarray]) -> MetricsMatrix:
    return MetricsMatrix.from_series(times.tolist(), {k: v.tolist() for k, v in series.items()})


def test_cpu_hog_is_ranked_first_with_its_evidence() -> None:
    times, series = base_series()
    shift(series, "payment_cpu_usage", 15.0)
    shift(series, "payment_latency_p90", 3.0)
    # The symptom shows upstream too, less strongly.
    shift(series, "frontend_latency_p90", 1.6)
    result = rank(matrix(times, series), ANOMALY)

    top = result.ranked[0]
    assert top.service == "payment"
    assert top.fault is FaultType.CPU
    assert top.evidence[0].column in {"payment_cpu_usage", "payment_latency_p90"}
    cpu = next(e for e in top.evidence if e.column == "payment_cpu_usage")
    assert cpu.direction == 1
    assert cpu.onset == ANOMALY
    assert cpu.value > 10 * cpu.baseline
    assert sorted(result.services) == sorted(SERVICES)
    assert top.confidence == max(r.confidence for r in result.ranked)
    assert sum(r.confidence for r in result.ranked) == pytest.approx(1.0)


def test_memory_growth_is_classified_as_memory() -> None:
    times, series = base_series(1)
    shift(series, "cart_memory_usage", 4.0, rows=8)
    shift(series, "cart_cpu_usage", 2.0, rows=8)
    top = rank(matrix(times, series), ANOMALY).ranked[0]
    assert (top.service, top.fault) == ("cart", FaultType.MEMORY)


def test_falling_success_rate_is_classified_as_errors() -> None:
    times, series = base_series(2)
    shift(series, "shipping_success_rate", 0.5)
    top = rank(matrix(times, series), ANOMALY).ranked[0]
    assert (top.service, top.fault) == ("shipping", FaultType.ERRORS)
    assert top.evidence[0].direction == -1


def test_single_sample_spike_does_not_beat_a_sustained_shift() -> None:
    times, series = base_series(3)
    series["email_latency_p90"][N_BEFORE + 2] *= 200.0  # one glitchy scrape
    shift(series, "cart_latency_p90", 4.0)
    assert rank(matrix(times, series), ANOMALY).ranked[0].service == "cart"


def test_metric_noisy_on_every_service_is_discounted_by_peers() -> None:
    times, series = base_series(4)
    rng = np.random.default_rng(9)
    # p99-like latency that jumps around on every service after the anomaly time...
    for s in SERVICES:
        series[f"{s}_latency_p90"][N_BEFORE:] *= 1 + 5 * rng.random(N_AFTER)
    # ...and a CPU jump on one of them.
    shift(series, "email_cpu_usage", 6.0)
    assert rank(matrix(times, series), ANOMALY).ranked[0].service == "email"


def test_call_graph_moves_blame_to_the_anomalous_callee() -> None:
    times, series = base_series(5)
    # The caller looks slightly worse than its callee (propagated latency plus its own noise).
    shift(series, "frontend_latency_p90", 5.0)
    shift(series, "cart_latency_p90", 4.0)
    without = rank(matrix(times, series), ANOMALY)
    assert without.ranked[0].service == "frontend"

    graph = [("frontend", "cart"), ("frontend", "payment"), ("frontend", "email")]
    with_graph = rank(matrix(times, series), ANOMALY, call_graph=graph)
    assert with_graph.ranked[0].service == "cart"
    assert with_graph.ranked[0].topology_score == pytest.approx(1.0)


def test_call_graph_with_unknown_services_is_noted_not_fatal() -> None:
    times, series = base_series(6)
    shift(series, "cart_cpu_usage", 10.0)
    result = rank(matrix(times, series), ANOMALY, call_graph=[("a", "b")])
    assert result.ranked[0].service == "cart"
    assert any("call graph" in n for n in result.notes)


def test_recent_rollout_breaks_a_close_call_and_sets_bad_rollout() -> None:
    times, series = base_series(7)
    shift(series, "payment_latency_p90", 3.0)
    shift(series, "shipping_latency_p90", 3.2)
    change = ChangeEvent(
        service="payment",
        kind=ChangeKind.ROLLOUT,
        at=datetime.fromtimestamp(ANOMALY - 120, tz=UTC),
        source="Deployment/shop/payment",
        detail="revision 7 -> 8",
    )
    result = rank(matrix(times, series), ANOMALY, changes=[change])
    top = result.ranked[0]
    assert (top.service, top.fault) == ("payment", FaultType.BAD_ROLLOUT)
    assert top.changes[0].source == "Deployment/shop/payment"
    assert top.change_score > 0

    # The same rollout a day earlier is not evidence.
    old = change.model_copy(update={"at": datetime.fromtimestamp(ANOMALY - 86_400, tz=UTC)})
    assert rank(matrix(times, series), ANOMALY, changes=[old]).ranked[0].changes == []


def test_a_release_that_moved_none_of_its_own_metrics_does_not_outrank_the_fault() -> None:
    """A benign rollout of `email` 20 s into `cart`'s memory leak: early in the leak its
    departure is small, the release changed nothing measurable in email, so it stays a weak
    suspect."""
    times, series = base_series(9)
    shift(series, "cart_memory_usage", 1.028)
    release = ChangeEvent(
        service="email",
        kind=ChangeKind.ROLLOUT,
        at=datetime.fromtimestamp(ANOMALY + 20, tz=UTC),
        source="ReplicaSet/shop/email-7d9f",
        detail="revision 2",
    )
    result = rank(matrix(times, series), ANOMALY, changes=[release])
    assert result.ranked[0].service == "cart"
    email = next(r for r in result.ranked if r.service == "email")
    assert 0 < email.change_score < 1.0
    assert any("rollout of email discounted" in n for n in result.notes), result.notes

    # Without the discount the release would win: the rule is what decides here.
    loud = rank(
        matrix(times, series),
        ANOMALY,
        changes=[release],
        config=RankConfig(quiet_change_weight=1.0),
    )
    assert loud.ranked[0].service == "email"
    # A release of a service the detector flagged is never discounted, however quiet the
    # ranking's own view of it is this early.
    flagged = rank(matrix(times, series), ANOMALY, changes=[release], flagged={"email"})
    assert flagged.ranked[0].service == "email"


def test_column_weights_scale_a_columns_standing() -> None:
    times, series = base_series(10)
    shift(series, "payment_latency_p90", 3.0)
    shift(series, "cart_memory_usage", 1.1)
    plain = rank(matrix(times, series), ANOMALY)
    assert plain.ranked[0].service == "payment"
    weighted = rank(matrix(times, series), ANOMALY, column_weights={"payment_latency_p90": 0.1})
    assert weighted.ranked[0].service == "cart"


def test_cordon_blames_the_workloads_on_the_node() -> None:
    times, series = base_series(8)
    shift(series, "email_latency_p90", 2.0)
    shift(series, "cart_latency_p90", 2.1)
    cordon = ChangeEvent(
        service="node-a",
        kind=ChangeKind.CORDON,
        at=datetime.fromtimestamp(ANOMALY - 60, tz=UTC),
        affects=["email"],
    )
    top = rank(matrix(times, series), ANOMALY, changes=[cordon]).ranked[0]
    assert (top.service, top.fault) == ("email", FaultType.NODE)


def test_missing_values_are_tolerated() -> None:
    times, series = base_series(9)
    series["frontend_latency_p90"][::3] = np.nan
    series["email_success_rate"][:] = np.nan  # never reported
    shift(series, "frontend_cpu_usage", 8.0)
    result = rank(matrix(times, series), ANOMALY)
    assert result.ranked[0].service == "frontend"
    assert "email" in result.services


def test_same_input_same_ranking() -> None:
    times, series = base_series(10)
    shift(series, "cart_cpu_usage", 3.0)
    m = matrix(times, series)
    assert rank(m, ANOMALY) == rank(m, ANOMALY)


def test_too_little_history_is_an_actionable_error() -> None:
    times, series = base_series()
    with pytest.raises(RcaInputError, match=r"only 2 row\(s\) before the anomaly time"):
        rank(matrix(times, series), T0 + 2 * STEP)


def test_anomaly_after_the_data_is_an_actionable_error() -> None:
    times, series = base_series()
    with pytest.raises(RcaInputError, match="no rows at or after the anomaly time"):
        rank(matrix(times, series), T0 + 1000 * STEP)


def test_matrix_rejects_unsorted_times_naming_the_row() -> None:
    with pytest.raises(RcaInputError, match="row 2"):
        MetricsMatrix.from_series([1.0, 2.0, 2.0], {"a_cpu": [1.0, 1.0, 1.0]})


def test_matrix_rejects_misaligned_values() -> None:
    with pytest.raises(RcaInputError, match="shape"):
        MetricsMatrix(times=np.arange(3.0), columns=("a_cpu",), values=np.zeros((3, 2)))


def test_custom_config_changes_the_window() -> None:
    times, series = base_series(11)
    # A departure that starts 8 minutes after the anomaly time is outside a 5-minute window.
    series["cart_cpu_usage"][N_BEFORE + 8 :] *= 20
    shift(series, "email_cpu_usage", 3.0)
    assert rank(matrix(times, series), ANOMALY).ranked[0].service == "email"
    wide = RankConfig()
    wide = RankConfig(scoring=wide.scoring.__class__(window_s=600.0))
    assert rank(matrix(times, series), ANOMALY, config=wide).ranked[0].service == "cart"


def test_late_alarm_onset_is_estimated_and_ranking_recovers() -> None:
    times, series = base_series(12)
    series["cart_cpu_usage"][N_BEFORE:] *= 6.0  # starts at ANOMALY and stays
    shift(series, "email_latency_p90", 1.5, rows=10)
    alarm = ANOMALY + 3 * STEP  # the detector fired three scrapes later
    m = matrix(times, series)

    def cart_cpu(result: RcaRanking) -> MetricEvidence:
        cart = next(r for r in result.ranked if r.service == "cart")
        return next(e for e in cart.evidence if e.column == "cart_cpu_usage")

    # Taken at face value, the alarm time puts the fault's first rows into the "normal" period:
    # the recent level is already the faulty one and the departure looks small.
    late = rank(m, alarm)
    assert cart_cpu(late).score < 20

    refined = rank(m, alarm, config=RankConfig(onset_search_s=300.0))
    assert refined.alarm_time == alarm
    assert refined.anomaly_time == ANOMALY
    assert any("onset estimated 180 s before" in n for n in refined.notes)
    assert refined.ranked[0].service == "cart"
    assert cart_cpu(refined).onset == ANOMALY
    assert cart_cpu(refined).score > 5 * cart_cpu(late).score
    assert cart_cpu(refined).ratio == pytest.approx(6.0, rel=0.1)


def test_change_to_a_service_without_metrics_is_still_a_suspect() -> None:
    times, series = base_series(13)
    shift(series, "cart_latency_p90", 1.3)  # mild symptoms only
    config_change = ChangeEvent(
        service="inventory",
        kind=ChangeKind.CONFIG_CHANGE,
        at=datetime.fromtimestamp(ANOMALY - 30, tz=UTC),
        source="ConfigMap/shop/inventory",
    )
    result = rank(matrix(times, series), ANOMALY, changes=[config_change])
    suspect = next(r for r in result.ranked if r.service == "inventory")
    assert suspect.fault is FaultType.BAD_ROLLOUT
    assert suspect.evidence == []
    assert suspect.changes[0].source == "ConfigMap/shop/inventory"
    assert any("inventory, which has no metrics" in n for n in result.notes)


def test_caller_errors_are_explained_by_a_callee_that_ran_out_of_memory() -> None:
    # The frontend's success rate collapses (its calls to cart fail) while cart's memory grows:
    # without the call graph the louder symptom wins; with it the caller's errors are
    # explained by the callee that departed at the same time.
    times, series = base_series(11)
    shift(series, "frontend_success_rate", 0.3)
    shift(series, "cart_memory_usage", 1.15)
    graph = [("frontend", "cart"), ("frontend", "payment")]
    assert rank(matrix(times, series), ANOMALY).ranked[0].service == "frontend"
    explained = rank(matrix(times, series), ANOMALY, call_graph=graph)
    assert explained.ranked[0].service == "cart"
    assert explained.ranked[0].fault is FaultType.MEMORY
    assert any("frontend discounted" in n and "cart" in n for n in explained.notes)
    # Off by configuration: the symptom keeps its full weight (the random walk alone does not
    # move the blame this far).
    off = rank(
        matrix(times, series), ANOMALY, call_graph=graph, config=RankConfig(explained_weight=1.0)
    )
    assert off.ranked[0].service == "frontend"


def test_a_callee_whose_traffic_merely_dropped_explains_nothing() -> None:
    # A failing caller calls its callees less: their request rate falls. That is no cause.
    times, series = base_series(12)
    series["frontend_requests"] = 100.0 * (
        1 + 0.02 * np.random.default_rng(3).standard_normal(N_BEFORE + N_AFTER)
    )
    series["cart_requests"] = series["frontend_requests"].copy()
    shift(series, "frontend_success_rate", 0.3)
    shift(series, "cart_requests", 0.3)
    graph = [("frontend", "cart")]
    result = rank(matrix(times, series), ANOMALY, call_graph=graph)
    assert not any("discounted" in n for n in result.notes)
    off = rank(
        matrix(times, series), ANOMALY, call_graph=graph, config=RankConfig(explained_weight=1.0)
    )

    def frontend(r: RcaRanking) -> float:
        return next(s.anomaly_score for s in r.ranked if s.service == "frontend")

    assert frontend(result) == pytest.approx(frontend(off))


def test_a_callee_that_slows_under_the_load_its_caller_passes_on_explains_nothing() -> None:
    # A surge into the frontend: it serves 2.7x its requests, its p90 and errors climb; it
    # calls every backend 2.7x as often, and cart's latency and CPU rise by a third with that
    # load. Cart is working harder for its caller, not failing it: the frontend stays first.
    # Had cart's latency risen with no extra load behind it, it would explain the frontend's.
    def surge(cart_load: float) -> RcaRanking:
        times, series = base_series(13)
        noise = np.random.default_rng(4).standard_normal((len(SERVICES), N_BEFORE + N_AFTER))
        for i, svc in enumerate(SERVICES):
            series[f"{svc}_requests"] = 100.0 * (1 + 0.02 * noise[i])
            shift(series, f"{svc}_requests", cart_load if svc == "cart" else 2.7)
        for column, factor in (
            ("frontend_latency_p90", 8.0),
            ("frontend_success_rate", 0.8),
            ("cart_latency_p90", 1.35),
            ("cart_cpu_usage", 1.4),
        ):
            shift(series, column, factor)
        graph = [("frontend", s) for s in SERVICES if s != "frontend"]
        return rank(matrix(times, series), ANOMALY, call_graph=graph)

    loaded = surge(cart_load=2.7)
    assert not any("frontend discounted" in n for n in loaded.notes), loaded.notes
    assert loaded.ranked[0].service == "frontend"
    alone = surge(cart_load=1.0)
    assert any("frontend discounted" in n and "cart" in n for n in alone.notes)


def test_errors_that_fell_are_no_evidence_against_a_service() -> None:
    # Payment recovers from an earlier incident (its success rate climbs back) while email's
    # CPU departs: the recovery, however many sigmas, does not make payment a suspect.
    times, series = base_series(13)
    series["payment_success_rate"][:N_BEFORE] = 60.0 + np.linspace(0, 1, N_BEFORE)
    series["payment_success_rate"][N_BEFORE:] = 99.0
    shift(series, "email_cpu_usage", 3.0)
    top = rank(matrix(times, series), ANOMALY).ranked[0]
    assert top.service == "email"
