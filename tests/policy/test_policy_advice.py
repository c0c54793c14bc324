"""A plan the model's re-ranking chose never needs fewer approvals than the plan of the
deterministic ranking (#14 item 2), whatever the two plans are."""

from __future__ import annotations

import itertools

import pytest

from aiops.domain import PolicyDecision, RemediationPlan, RiskLevel, TimeoutAction
from aiops.policy import PolicyContext, evaluate, parse_policy
from aiops.policy.advice import hold_to_evidence
from tests.keys import public

from .builders import NOW, plan, step

PEOPLE = ("alice", "bob", "carol", "dave")
IDENTITIES = ", ".join(f"{p}: {{cli: ['{public(p)}']}}" for p in PEOPLE)
POLICY = parse_policy(
    f"""
allow:
  - {{name: shop, namespaces: [boutique], actions: [k8s.rollout_restart, k8s.rollout_undo]}}
  - {{name: nodes, actions: [k8s.cordon, k8s.drain]}}
approvals:
  timeout: 15m
  default_approvers: [group:oncall]
  rules:
    - {{name: medium, risk_at_least: medium, approvals: 1, approvers: [group:sre]}}
    - {{name: high, risk_at_least: high, approvals: 2, approvers: [group:sre], timeout: 30m,
       on_timeout: escalate}}
  groups: {{sre: [alice, bob, carol], oncall: [dave]}}
  identities: {{{IDENTITIES}}}
""",
    "advice.yaml",
)
CONTEXT = PolicyContext(now=NOW)

RESTART_AD = plan(step("k8s.rollout_restart", name="adservice"), risk=RiskLevel.LOW)
ROLLBACK_CART = plan(step("k8s.rollout_undo", name="cartservice"), risk=RiskLevel.MEDIUM)
DRAIN = plan(step("k8s.cordon", name="node-a"), step("k8s.drain", name="node-a"))
DRAIN = DRAIN.model_copy(update={"risk": RiskLevel.HIGH})
ESCALATE = RemediationPlan(incident_id="inc-1", playbook_id="escalate")
DENIED = plan(step("k8s.rollout_restart", namespace="payments", name="x"))


def held(advised: RemediationPlan, baseline: RemediationPlan) -> PolicyDecision:
    own = evaluate(advised, CONTEXT, POLICY)
    return hold_to_evidence(own, advised, baseline, CONTEXT, POLICY)


def test_a_rollback_that_needed_approval_does_not_become_an_automatic_restart() -> None:
    assert not evaluate(RESTART_AD, CONTEXT, POLICY).requires_approval  # the defect's shape
    decision = held(RESTART_AD, ROLLBACK_CART)
    assert decision.allowed and decision.requires_approval
    assert decision.approvals_required == 1
    assert decision.approvers == ["alice", "bob", "carol"]
    assert (
        "re-ranking chose test on adservice over the deterministic plan test on cartservice"
        in (decision.reasons[-1])
    )


def test_the_two_person_rule_of_the_deterministic_plan_carries_over() -> None:
    drain = evaluate(DRAIN, CONTEXT, POLICY)
    decision = held(RESTART_AD, DRAIN)  # the restart needs no approval of its own
    assert decision.requires_approval and decision.approvals_required == 2
    assert decision.approvers == drain.approvers
    assert decision.approval_timeout_s == drain.approval_timeout_s  # the drain's terms
    assert decision.on_timeout is TimeoutAction.ESCALATE


def test_when_the_deterministic_plan_would_not_run_a_person_decides() -> None:
    for baseline in (ESCALATE, DENIED):
        decision = held(RESTART_AD, baseline)
        assert decision.requires_approval and decision.approvals_required == 1
        assert decision.approvers == ["dave"]  # the policy's default approvers
        assert "a person decides" in decision.reasons[-1]


def test_denials_escalations_and_stricter_plans_are_left_as_they_are() -> None:
    denied = evaluate(DENIED, CONTEXT, POLICY)
    assert not denied.allowed
    assert hold_to_evidence(denied, DENIED, ROLLBACK_CART, CONTEXT, POLICY) == denied
    escalation = evaluate(ESCALATE, CONTEXT, POLICY)
    assert hold_to_evidence(escalation, ESCALATE, ROLLBACK_CART, CONTEXT, POLICY) == escalation
    own = evaluate(DRAIN, CONTEXT, POLICY)
    assert held(DRAIN, RESTART_AD) == own  # the deterministic plan ran without a human


PLANS = [RESTART_AD, ROLLBACK_CART, DRAIN, ESCALATE, DENIED]


@pytest.mark.parametrize(("advised", "baseline"), list(itertools.permutations(PLANS, 2)))
def test_never_fewer_approvals_than_the_deterministic_plan(
    advised: RemediationPlan, baseline: RemediationPlan
) -> None:
    floor = evaluate(baseline, CONTEXT, POLICY)
    decision = held(advised, baseline)
    runs_unattended = decision.allowed and bool(advised.steps) and not decision.requires_approval
    if runs_unattended:
        assert floor.allowed and baseline.steps and not floor.requires_approval
    if decision.allowed and decision.requires_approval and floor.requires_approval:
        assert decision.approvals_required >= floor.approvals_required
        assert set(decision.approvers) <= set(floor.approvers)
