"""Contracts between playbooks, policy and the executor."""

from __future__ import annotations

from aiops.domain import FaultType
from aiops.playbooks import Observed, load_playbooks, plan_remediation
from aiops.playbooks.actions import ACTIONS
from aiops.policy import PolicyContext, evaluate, load_policy
from aiops.policy.models import ACTION_KINDS

from .builders import NOW, PLAYBOOKS, REPO, report


def test_playbooks_and_policy_know_the_same_actions() -> None:
    assert {a: s.kind for a, s in ACTIONS.items()} == ACTION_KINDS


def test_every_shipped_plan_passes_the_lab_policy() -> None:
    """What the lab mapping plans, the lab policy allows (with approval for medium+ risk)."""
    books = load_playbooks(PLAYBOOKS)
    policy = load_policy(REPO / "policies" / "lab.yaml")
    for fault in FaultType:
        kind = "Node" if fault is FaultType.NODE else "Deployment"
        target = "node-2" if fault is FaultType.NODE else "cartservice"
        plan = plan_remediation(
            report(fault, target=target, kind=kind), books, Observed(replicas=3)
        ).plan
        replicas = {s.target: 3 for s in plan.steps}
        decision = evaluate(plan, PolicyContext(now=NOW, current_replicas=replicas), policy)
        assert decision.allowed, (fault, decision.reasons)
        assert decision.requires_approval == (plan.risk.value != "low")


def test_shipped_plans_in_a_protected_namespace_are_denied_by_the_default_policy() -> None:
    books = load_playbooks(PLAYBOOKS)
    policy = load_policy(REPO / "policies" / "default.yaml")
    for fault in ("memory", "bad_rollout", "traffic_surge"):
        plan = plan_remediation(
            report(fault, namespace="kube-system"), books, Observed(replicas=3)
        ).plan
        assert plan.steps
        target = plan.steps[0].target
        ctx = PolicyContext(now=NOW, current_replicas={target: 3}, labels={target: {}})
        decision = evaluate(plan, ctx, policy)
        assert not decision.allowed
        assert any("'kube-system' is protected" in r for r in decision.reasons)
