"""Scoring helpers of the live-lab RCA bench."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiops_lab.eval.lab_rca import FAULT_TYPE, RcaResult, expected_fault, rank_of, summary
from aiops_lab.scenario import SCENARIO_DIR, load_all

from aiops.domain import FaultType, Hypothesis, RcaReport


def report(*targets: str) -> RcaReport:
    now = datetime.now(UTC)
    return RcaReport(
        incident_id="i",
        summary="s",
        started_at=now,
        finished_at=now,
        hypotheses=[Hypothesis(target=t, fault=FaultType.CPU, confidence=0.5) for t in targets],
    )


def test_every_lab_fault_kind_has_an_rca_fault_type() -> None:
    kinds = {f.kind.value for s in load_all(SCENARIO_DIR).values() for f in s.faults}
    assert kinds <= set(FAULT_TYPE)
    assert expected_fault("node_pressure") is FaultType.NODE
    with pytest.raises(ValueError, match="no RCA fault type for lab fault kind 'meteor'"):
        expected_fault("meteor")


def test_rank_and_summary() -> None:
    assert rank_of(report("a", "b"), "b") == 2
    assert rank_of(report("a"), "z") is None
    results = [
        RcaResult(
            "s1",
            "a",
            "cpu",
            "restart-deployment",
            rank=1,
            top="a",
            top_fault="cpu",
            chosen_playbook="restart-deployment",
            latency_s=0.5,
            trigger="detection",
        ),
        RcaResult(
            "s2",
            "b",
            "memory",
            "restart-deployment",
            rank=1,
            top="b",
            top_fault="cpu",
            chosen_playbook="escalate",
            latency_s=1.5,
            trigger="fallback",
        ),
        RcaResult(
            "s3",
            "c",
            "node",
            "cordon-and-drain-node",
            rank=3,
            top="x",
            top_fault="node",
            latency_s=0.9,
        ),
    ]
    s = summary(results)
    assert (s["rank1"], s["rank1_fault"], s["playbook_ok"], s["in_top3"]) == (2, 1, 1, 3)
    assert s["rank1_rate"] == pytest.approx(0.667)
    assert (s["latency_p50_s"], s["latency_p95_s"], s["detected"]) == (0.9, 1.5, 1)
