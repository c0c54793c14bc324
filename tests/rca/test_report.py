"""Rankings become domain hypotheses whose evidence cites a re-runnable source."""

from __future__ import annotations

from datetime import UTC, datetime

from test_rank import ANOMALY, base_series, matrix, shift

from aiops.domain import FaultType, Hypothesis
from aiops.rca import ChangeEvent, ChangeKind, rank, summarise, to_hypotheses


def test_hypotheses_cite_promql_and_rollout() -> None:
    times, series = base_series(20)
    shift(series, "payment_cpu_usage", 12.0)
    rollout = ChangeEvent(
        service="payment",
        kind=ChangeKind.ROLLOUT,
        at=datetime.fromtimestamp(ANOMALY - 90, tz=UTC),
        source="Deployment/shop/payment",
        detail="image payment:1.4 -> payment:1.5",
    )
    ranking = rank(matrix(times, series), ANOMALY, changes=[rollout])
    promql = 'sum(rate(container_cpu_usage_seconds_total{pod=~"payment-.*"}[1m]))'
    hyps = to_hypotheses(ranking, sources={"payment_cpu_usage": promql}, namespace="shop", limit=3)

    assert len(hyps) == 3
    top = hyps[0]
    assert isinstance(top, Hypothesis)
    assert (top.target, top.namespace, top.fault) == ("payment", "shop", FaultType.BAD_ROLLOUT)
    assert top.evidence[0].kind == "rollout"
    assert top.evidence[0].source == "Deployment/shop/payment"
    cpu = next(e for e in top.evidence if e.kind == "metric")
    assert cpu.source == promql
    assert cpu.observed_at == datetime.fromtimestamp(ANOMALY, tz=UTC)
    assert "rose" in cpu.summary
    assert cpu.value is not None
    assert cpu.baseline is not None
    assert cpu.value > 10 * cpu.baseline
    # Hypotheses are JSON round-trippable (they travel through Temporal).
    assert Hypothesis.model_validate_json(top.model_dump_json()) == top


def test_summary_names_the_culprit_and_why() -> None:
    times, series = base_series(21)
    shift(series, "cart_memory_usage", 5.0, rows=8)
    text = summarise(rank(matrix(times, series), ANOMALY))
    assert text.startswith("cart is the most likely root cause (memory fault")
    assert "cart_memory_usage rose" in text
    assert "Next:" in text
