"""The whole policy matrix: no action ever runs outside the allow-list."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from aiops.domain import RiskLevel
from aiops.policy import (
    ActionRecord,
    PolicyContext,
    can_approve,
    evaluate,
    parse_policy,
    resolve_identity,
)
from aiops.policy.models import ACTION_KINDS

from .builders import NOW, plan, step

POLICY = parse_policy(
    """
protected_namespaces: [monitoring]
allow:
  - name: shop
    namespaces: [boutique]
    actions: [k8s.rollout_restart, k8s.scale, k8s.rollout_undo, k8s.delete_pod]
  - name: workers
    actions: [k8s.cordon, k8s.drain]
    selector:
      matchExpressions: [{key: node-role.kubernetes.io/control-plane, operator: DoesNotExist}]
budgets:
  per_namespace_per_hour: 3
  per_cluster_per_hour: 5
  cooldown_per_target: 10m
approvals:
  rules:
    - {name: medium, risk_at_least: medium, approvals: 1, approvers: [group:sre]}
    - {name: high, risk_at_least: high, approvals: 2, approvers: [group:sre]}
  groups: {sre: [alice, bob]}
  identities: {alice: {slack: [U1]}, bob: {slack: [U2]}}
""",
    "matrix.yaml",
)

NAMESPACED = [a for a, k in ACTION_KINDS.items() if k != "Node"]
NODE_ACTIONS = [a for a, k in ACTION_KINDS.items() if k == "Node"]
PROTECTED = ["kube-system", "kube-public", "kube-node-lease", "monitoring"]
NAMESPACES = [*PROTECTED, "boutique", "payments"]  # boutique is allowed, payments is not listed
NODES = {"worker-1": {}, "control-1": {"node-role.kubernetes.io/control-plane": ""}}
BUDGETS = ["under", "at_namespace_budget", "at_cluster_budget"]
APPROVALS = [RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH]  # none / one / two-person
KILL = [False, True]

TARGETS = [(a, ns) for a in NAMESPACED for ns in NAMESPACES] + [
    (a, node) for a in NODE_ACTIONS for node in NODES
]
CASES = list(itertools.product(TARGETS, BUDGETS, APPROVALS, KILL))


def _history(budget: str) -> list[ActionRecord]:
    # Mutations on other targets (so no cooldown applies) within the last hour.
    count = {"under": 1, "at_namespace_budget": 3, "at_cluster_budget": 5}[budget]
    namespace = "boutique" if budget == "at_namespace_budget" else "elsewhere"
    return [
        ActionRecord(
            at=NOW - timedelta(minutes=5 + i),
            action="k8s.rollout_restart",
            target=f"Deployment/{namespace}/other-{i}",
            namespace=namespace,
        )
        for i in range(count)
    ]


def _case(target: tuple[str, str], budget: str, risk: RiskLevel, kill: bool):
    action, where = target
    node = ACTION_KINDS[action] == "Node"
    s = step(action, name=where) if node else step(action, namespace=where, name="cartservice")
    p = plan(s, risk=risk)
    ctx = PolicyContext(
        now=NOW,
        history=_history(budget),
        current_replicas={s.target: 2},
        labels={s.target: NODES[where] if node else {"app": "cartservice"}},
        kill_switch=kill,
    )
    return s, evaluate(p, ctx, POLICY)


def test_matrix_size() -> None:
    """(4 namespaced actions x 6 namespaces + 2 node actions x 2 nodes) = 28 targets
    x 3 budget states x 3 approval states x 2 kill-switch states = 504 cases."""
    assert len(TARGETS) == 28
    assert len(CASES) == 504


def test_zero_actions_outside_the_allow_list() -> None:
    """Across all 504 cases, every allowed step is inside the allow-list, and every step inside
    the allow-list is allowed exactly when budgets and the kill switch permit."""
    outside_allowed = []
    wrong = []
    for target, budget, risk, kill in CASES:
        _s, decision = _case(target, budget, risk, kill)
        action, where = target
        node = ACTION_KINDS[action] == "Node"
        in_allow_list = where == "worker-1" if node else where == "boutique"
        if decision.allowed and not in_allow_list:
            outside_allowed.append((target, budget, risk, kill))
        over_budget = budget == "at_cluster_budget" or (
            budget == "at_namespace_budget" and not node and where == "boutique"
        )
        expected = in_allow_list and not over_budget and not kill
        if decision.allowed != expected:
            wrong.append((target, budget, risk, kill, decision.reasons))
    assert outside_allowed == []
    assert wrong == []


@pytest.mark.parametrize(("target", "budget", "risk", "kill"), CASES[::7])
def test_every_cause_is_named(target, budget, risk, kill) -> None:
    _s, decision = _case(target, budget, risk, kill)
    _action, where = target
    text = "\n".join(decision.reasons)
    assert decision.reasons
    assert decision.policy_version == POLICY.version()
    if kill:
        assert "kill switch" in text
    if where in PROTECTED:
        assert f"namespace '{where}' is protected" in text
    if where in ("payments", "control-1"):
        assert "no allow rule permits" in text
    if budget == "at_cluster_budget":
        assert "cluster budget: 5 mutations" in text
    if not decision.allowed:
        assert not decision.requires_approval


def test_approval_states_in_the_allow_list() -> None:
    expected = {RiskLevel.LOW: (False, 0), RiskLevel.MEDIUM: (True, 1), RiskLevel.HIGH: (True, 2)}
    for (action, where), risk in itertools.product(TARGETS, APPROVALS):
        if where not in ("boutique", "worker-1"):
            continue
        _, decision = _case((action, where), "under", risk, False)
        assert decision.allowed
        assert (decision.requires_approval, decision.approvals_required) == expected[risk]
        if decision.requires_approval:
            assert decision.approvers == ["alice", "bob"]
            assert can_approve("alice", decision)
            # A raw channel user id is not an identity until resolved through the policy.
            assert not can_approve("U1", decision)
            assert can_approve(resolve_identity(POLICY, "slack", "U1") or "", decision)
        else:
            assert not can_approve("alice", decision)
