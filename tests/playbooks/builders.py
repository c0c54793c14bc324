"""Builders shared by the playbook tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiops.domain import Evidence, FaultType, Hypothesis, RcaReport

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def report(
    fault: FaultType | str,
    target: str = "cartservice",
    kind: str = "Deployment",
    namespace: str | None = "boutique",
    confidence: float = 0.9,
    evidence: list[Evidence] | None = None,
) -> RcaReport:
    hypothesis = Hypothesis(
        target=target,
        target_kind=kind,  # type: ignore[arg-type]
        namespace=None if kind == "Node" else namespace,
        fault=FaultType(fault),
        confidence=confidence,
        evidence=evidence or [],
    )
    return RcaReport(
        incident_id="inc-42",
        hypotheses=[hypothesis],
        summary="test",
        started_at=NOW,
        finished_at=NOW,
    )
