"""Builders shared by the policy tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiops.domain import RemediationPlan, RiskLevel, Step
from aiops.policy.models import ACTION_KINDS

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday


def step(
    action: str,
    namespace: str | None = "boutique",
    name: str = "cartservice",
    replicas: int | None = None,
) -> Step:
    kind = ACTION_KINDS[action]
    if kind == "Node":
        return Step(action=action, args={"node": name, "kind": kind})
    args: dict[str, object] = {"namespace": namespace, "name": name, "kind": kind}
    if action == "k8s.scale":
        args["replicas"] = 3 if replicas is None else replicas
    return Step(action=action, args=args)


def plan(
    *steps: Step,
    risk: RiskLevel = RiskLevel.LOW,
    incident: str = "inc-1",
    compensation: list[Step] | None = None,
) -> RemediationPlan:
    first = steps[0] if steps else None
    return RemediationPlan(
        incident_id=incident,
        playbook_id="test",
        namespace=first.args.get("namespace") if first else None,
        target=first.args.get("name") if first else None,
        risk=risk,
        steps=list(steps),
        compensation=compensation or [],
    )
