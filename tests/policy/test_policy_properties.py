"""Property-based tests of policy evaluation (hypothesis)."""

from __future__ import annotations

import fnmatch
from datetime import timedelta

import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aiops.domain import RemediationPlan, RiskLevel, Step
from aiops.policy import ActionRecord, Policy, PolicyContext, evaluate, parse_policy
from aiops.policy.evaluate import step_kind, step_namespace
from aiops.policy.models import (
    ACTION_KINDS,
    ApprovalRule,
    Approvals,
    Budgets,
    Identity,
    LabelSelector,
    Rule,
)
from tests.keys import public

from .builders import NOW

NAMESPACES = [
    "boutique",
    "payments",
    "team-a",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "monitoring",
]
PATTERNS = [*NAMESPACES, "*", "kube-*", "team-*", "b*"]
NAMESPACED = sorted(a for a, k in ACTION_KINDS.items() if k != "Node")
NODE_ACTIONS = sorted(a for a, k in ACTION_KINDS.items() if k == "Node")
SELECTORS = st.none() | st.sampled_from(
    [LabelSelector(match_labels={"tier": "web"}), LabelSelector(match_labels={"tier": "db"})]
)
FAST = settings(max_examples=60, deadline=None)


@st.composite
def rules(draw: st.DrawFn, prefix: str) -> list[Rule]:
    out = []
    for i in range(draw(st.integers(0, 4))):
        selector = draw(SELECTORS)
        if draw(st.booleans()):
            out.append(
                Rule(
                    name=f"{prefix}{i}",
                    actions=draw(st.lists(st.sampled_from(NAMESPACED), min_size=1, unique=True)),
                    namespaces=draw(st.lists(st.sampled_from(PATTERNS), min_size=1, unique=True)),
                    selector=selector,
                )
            )
        else:
            out.append(
                Rule(
                    name=f"{prefix}{i}",
                    actions=draw(st.lists(st.sampled_from(NODE_ACTIONS), min_size=1, unique=True)),
                    selector=selector,
                )
            )
    return out


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    people = {name: Identity(cli=[public(name)]) for name in ("alice", "bob", "carol")}
    approval_rules = [
        ApprovalRule(
            name=f"r{i}",
            risk_at_least=draw(st.sampled_from(list(RiskLevel))),
            approvals=draw(st.integers(1, 2)),
            approvers=draw(st.lists(st.sampled_from(sorted(people)), min_size=2, unique=True)),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    return Policy(
        kill_switch=draw(st.booleans()) and draw(st.booleans()),
        protected_namespaces=draw(
            st.lists(st.sampled_from(["monitoring", "payments"]), unique=True)
        ),
        allow=draw(rules("allow-")),
        deny=draw(rules("deny-")) if draw(st.booleans()) else [],
        budgets=Budgets(
            per_namespace_per_hour=draw(st.integers(0, 8)),
            per_cluster_per_hour=draw(st.integers(0, 12)),
            cooldown_per_target=draw(st.sampled_from([0, 60, 900, 3600])),
            max_failures_per_target=draw(st.integers(1, 4)),
            failure_window=draw(st.sampled_from([3600, 86400])),
        ),
        approvals=Approvals(rules=approval_rules, identities=people),
    )


@st.composite
def steps(draw: st.DrawFn, namespaces: list[str] = NAMESPACES) -> Step:
    action = draw(st.sampled_from(sorted(ACTION_KINDS)))
    kind = ACTION_KINDS[action]
    if kind == "Node":
        return Step(action=action, args={"node": draw(st.sampled_from(["n1", "n2"])), "kind": kind})
    args = {
        "namespace": draw(st.sampled_from(namespaces)),
        "name": draw(st.sampled_from(["cart", "web"])),
        "kind": kind,
    }
    if action == "k8s.scale":
        args["replicas"] = draw(st.integers(0, 30))
    return Step(action=action, args=args)


@st.composite
def plans(draw: st.DrawFn, namespaces: list[str] = NAMESPACES) -> RemediationPlan:
    return RemediationPlan(
        incident_id="inc-p",
        playbook_id="prop",
        risk=draw(st.sampled_from(list(RiskLevel))),
        steps=draw(st.lists(steps(namespaces), min_size=1, max_size=3)),
        compensation=draw(st.lists(steps(namespaces), max_size=1)),
    )


TARGETS = [
    f"{k}/{ns}/{n}" for k in ("Deployment", "Pod") for ns in NAMESPACES for n in ("cart", "web")
] + ["Node/n1", "Node/n2"]


@st.composite
def contexts(draw: st.DrawFn) -> PolicyContext:
    history = []
    for _ in range(draw(st.integers(0, 8))):
        target = draw(st.sampled_from(TARGETS))
        parts = target.split("/")
        history.append(
            ActionRecord(
                at=NOW - timedelta(minutes=draw(st.integers(0, 2000))),
                action="k8s.cordon" if parts[0] == "Node" else "k8s.rollout_restart",
                target=target,
                namespace=parts[1] if len(parts) == 3 else None,
                outcome=draw(st.sampled_from(["succeeded", "failed", "rolled_back"])),
            )
        )
    labels = {
        t: {"tier": draw(st.sampled_from(["web", "db"]))} for t in TARGETS if draw(st.booleans())
    }
    replicas = {t: draw(st.integers(0, 12)) for t in TARGETS if draw(st.booleans())}
    return PolicyContext(
        now=NOW,
        history=history,
        labels=labels,
        current_replicas=replicas,
        kill_switch=draw(st.booleans()) and draw(st.booleans()),
    )


def _allow_listed(step: Step, ctx: PolicyContext, policy: Policy) -> bool:
    ns = step_namespace(step)
    labels = ctx.labels.get(step.target)
    for rule in policy.allow:
        if step.action not in rule.actions or step_kind(step) not in rule.effective_kinds():
            continue
        ns_ok = (
            (not rule.namespaces)
            if ns is None
            else any(fnmatch.fnmatchcase(ns, p) for p in rule.namespaces)
        )
        sel_ok = rule.selector is None or (labels is not None and rule.selector.matches(labels))
        if ns_ok and sel_ok:
            return True
    return False


@FAST
@given(
    plans(),
    contexts(),
    policies(),
    st.sampled_from(sorted({"kube-system", "kube-public", "kube-node-lease"})),
)
def test_a_protected_namespace_is_never_allowed(plan, ctx, policy, ns) -> None:
    # Even an allow rule naming the namespace outright (which the loader refuses) does not help.
    rule = Rule(name="sneaky", actions=NAMESPACED, namespaces=[ns, "*"])
    policy = policy.model_copy(update={"allow": [*policy.allow, rule]})
    bad = Step(action="k8s.rollout_restart", args={"namespace": ns, "name": "x"})
    plan = plan.model_copy(update={"steps": [*plan.steps, bad]})
    assert not evaluate(plan, ctx, policy).allowed


@FAST
@given(plans(), contexts(), policies())
def test_the_kill_switch_denies_everything(plan, ctx, policy) -> None:
    on_ctx = ctx.model_copy(update={"kill_switch": True})
    on_policy = policy.model_copy(update={"kill_switch": True})
    for c, p in ((on_ctx, policy), (ctx, on_policy)):
        decision = evaluate(plan, c, p)
        assert not decision.allowed
        assert any("kill switch" in r for r in decision.reasons)


@FAST
@given(plans(), contexts(), policies())
def test_allowed_means_every_step_is_allow_listed_and_unprotected(plan, ctx, policy) -> None:
    decision = evaluate(plan, ctx, policy)
    assert decision.reasons
    assert decision.policy_version == policy.version()
    if decision.allowed:
        for s in [*plan.steps, *plan.compensation]:
            assert _allow_listed(s, ctx, policy)
            assert not policy.is_protected(step_namespace(s))
    else:
        assert not decision.requires_approval


@FAST
@given(
    plans(),
    contexts(),
    policies(),
    st.integers(0, 10),
    st.integers(0, 10),
    st.integers(0, 3),
    st.sampled_from([0.0, 0.5, 1.0]),
)
def test_raising_budgets_never_turns_allow_into_deny(
    plan, ctx, policy, more_ns, more_cluster, more_failures, cooldown_scale
) -> None:
    b = policy.budgets
    looser = b.model_copy(
        update={
            "per_namespace_per_hour": b.per_namespace_per_hour + more_ns,
            "per_cluster_per_hour": b.per_cluster_per_hour + more_cluster,
            "max_failures_per_target": b.max_failures_per_target + more_failures,
            "cooldown_per_target": b.cooldown_per_target * cooldown_scale,
        }
    )
    before = evaluate(plan, ctx, policy)
    after = evaluate(plan, ctx, policy.model_copy(update={"budgets": looser}))
    if before.allowed:
        assert after.allowed
        assert after.requires_approval == before.requires_approval


@FAST
@given(plans(), contexts(), policies(), rules("extra-"))
def test_more_allow_rules_never_turn_allow_into_deny(plan, ctx, policy, extra) -> None:
    before = evaluate(plan, ctx, policy)
    after = evaluate(plan, ctx, policy.model_copy(update={"allow": [*policy.allow, *extra]}))
    if before.allowed:
        assert after.allowed


@FAST
@given(plans(), contexts(), policies())
def test_without_allow_rules_nothing_runs(plan, ctx, policy) -> None:
    empty = policy.model_copy(update={"allow": []})
    assert not evaluate(plan, ctx, empty).allowed


@FAST
@given(plans(), contexts(), policies())
def test_approval_needs_enough_distinct_approvers(plan, ctx, policy) -> None:
    decision = evaluate(plan, ctx, policy)
    if decision.requires_approval:
        assert decision.allowed
        assert len(set(decision.approvers)) >= decision.approvals_required >= 1
        assert set(decision.approvers) <= set(policy.approvals.identities)


@FAST
@given(policies())
def test_version_survives_a_yaml_round_trip(policy) -> None:
    assume(not policy.conflicts())
    text = yaml.safe_dump(policy.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert parse_policy(text).version() == policy.version()
