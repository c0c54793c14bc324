"""Behaviour of evaluate(): bounds, PDBs, cooldowns, anti-flapping, windows, approvals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.domain import RemediationPlan, RiskLevel, Step, TimeoutAction
from aiops.policy import (
    ActionRecord,
    PdbInfo,
    PolicyContext,
    can_approve,
    deny_all,
    evaluate,
    parse_policy,
    resolve_identity,
)
from aiops.policy.identities import fingerprint
from tests.keys import public

from .builders import NOW, plan, step

BASE = """
allow:
  - name: shop
    namespaces: [boutique]
    actions: [k8s.rollout_restart, k8s.scale, k8s.rollout_undo, k8s.delete_pod]
  - name: nodes
    actions: [k8s.cordon, k8s.drain]
bounds:
  scale: {max_factor: 2, ceiling: 10, min_replicas: 1}
budgets:
  per_namespace_per_hour: 5
  per_cluster_per_hour: 10
  cooldown_per_target: 15m
  max_failures_per_target: 2
  failure_window: 24h
"""


def policy(extra: str = ""):
    return parse_policy(BASE + extra, "test.yaml")


def ctx(**kw) -> PolicyContext:
    return PolicyContext(now=kw.pop("now", NOW), **kw)


SCALE_TARGET = "Deployment/boutique/cartservice"


@pytest.mark.parametrize(
    ("current", "replicas", "allowed", "words"),
    [
        (2, 4, True, "allowed by rule 'shop'"),
        (2, 5, False, "2 -> 5 replicas is more than x2"),
        (6, 11, False, "above the ceiling of 10"),
        (2, 0, False, "below the minimum of 1"),
        (None, 3, False, "current replica count is unknown"),
    ],
)
def test_scale_bounds(current, replicas, allowed, words) -> None:
    p = plan(step("k8s.scale", replicas=replicas))
    c = ctx(current_replicas={SCALE_TARGET: current} if current is not None else {})
    d = evaluate(p, c, policy())
    assert d.allowed is allowed
    assert any(words in r for r in d.reasons), d.reasons


def test_scale_never_below_pdb_min_available() -> None:
    pdb = PdbInfo(name="cart", namespace="boutique", targets=[SCALE_TARGET], min_available=3)
    p = plan(step("k8s.scale", replicas=2))
    d = evaluate(p, ctx(current_replicas={SCALE_TARGET: 4}, pdbs=[pdb]), policy())
    assert not d.allowed
    assert any("minAvailable 3" in r for r in d.reasons)
    ok = evaluate(
        plan(step("k8s.scale", replicas=3)),
        ctx(current_replicas={SCALE_TARGET: 4}, pdbs=[pdb]),
        policy(),
    )
    assert ok.allowed


def test_delete_pod_respects_pdb() -> None:
    target = "Pod/boutique/cart-1"
    s = step("k8s.delete_pod", name="cart-1")
    tight = PdbInfo(
        name="cart", namespace="boutique", targets=[target], min_available=2, current_healthy=2
    )
    loose = tight.model_copy(update={"current_healthy": 3})
    assert not evaluate(plan(s), ctx(pdbs=[tight]), policy()).allowed
    assert evaluate(plan(s), ctx(pdbs=[loose]), policy()).allowed
    blocked = loose.model_copy(update={"disruptions_allowed": 0})
    d = evaluate(plan(s), ctx(pdbs=[blocked]), policy())
    assert not d.allowed
    assert any("allows no disruption" in r for r in d.reasons)


def test_pdb_can_be_ignored_only_explicitly() -> None:
    target = "Pod/boutique/cart-1"
    tight = PdbInfo(name="cart", namespace="boutique", targets=[target], disruptions_allowed=0)
    assert not evaluate(
        plan(step("k8s.delete_pod", name="cart-1")), ctx(pdbs=[tight]), policy()
    ).allowed
    no_pdb = parse_policy(BASE.replace("bounds:\n", "bounds:\n  respect_pdb: false\n"), "x.yaml")
    assert evaluate(plan(step("k8s.delete_pod", name="cart-1")), ctx(pdbs=[tight]), no_pdb).allowed


def test_cooldown_per_target() -> None:
    target = "Deployment/boutique/cartservice"
    recent = ActionRecord(
        at=NOW - timedelta(minutes=5),
        action="k8s.rollout_restart",
        target=target,
        namespace="boutique",
        incident_id="inc-0",
    )
    old = recent.model_copy(update={"at": NOW - timedelta(minutes=20)})
    p = plan(step("k8s.rollout_restart"))
    d = evaluate(p, ctx(history=[recent]), policy())
    assert not d.allowed
    assert any("cooldown" in r and "5m ago" in r for r in d.reasons)
    assert evaluate(p, ctx(history=[old]), policy()).allowed
    # Another target's change does not cool this one down.
    other = recent.model_copy(update={"target": "Deployment/boutique/frontend"})
    assert evaluate(p, ctx(history=[other]), policy()).allowed
    # The incident's own earlier action does not block its retry.
    own = recent.model_copy(update={"incident_id": "inc-1"})
    assert evaluate(p, ctx(history=[own]), policy()).allowed


def test_actions_dated_in_the_future_count_clock_skew_fails_closed() -> None:
    target = "Deployment/boutique/cartservice"
    ahead = ActionRecord(
        at=NOW + timedelta(minutes=10),  # a worker whose clock runs 10 minutes ahead
        action="k8s.rollout_restart",
        target=target,
        namespace="boutique",
        incident_id="inc-0",
    )
    p = plan(step("k8s.rollout_restart"))
    d = evaluate(p, ctx(history=[ahead]), policy())
    assert not d.allowed
    assert any("cooldown" in r and "0s ago" in r for r in d.reasons), d.reasons
    busy = [ahead.model_copy(update={"target": f"Deployment/boutique/s{i}"}) for i in range(5)]
    d = evaluate(p, ctx(history=busy), policy())
    assert any("namespace budget: 5 mutations" in r for r in d.reasons), d.reasons


def test_anti_flapping_stops_after_k_failures() -> None:
    target = "Deployment/boutique/cartservice"
    fails = [
        ActionRecord(
            at=NOW - timedelta(hours=h),
            action="k8s.rollout_restart",
            target=target,
            namespace="boutique",
            outcome=o,
        )
        for h, o in ((3, "failed"), (5, "rolled_back"))
    ]
    p = plan(step("k8s.rollout_restart"))
    d = evaluate(p, ctx(history=fails), policy())
    assert not d.allowed
    assert any("anti-flapping: 2 failed remediations" in r and "escalate" in r for r in d.reasons)
    assert evaluate(p, ctx(history=fails[:1]), policy()).allowed
    outside_window = [f.model_copy(update={"at": NOW - timedelta(hours=30)}) for f in fails]
    assert evaluate(p, ctx(history=outside_window), policy()).allowed


def test_dry_runs_and_future_records_do_not_count() -> None:
    recs = [
        ActionRecord(
            at=NOW - timedelta(minutes=1),
            action="k8s.scale",
            target=f"Deployment/boutique/x{i}",
            namespace="boutique",
            dry_run=True,
        )
        for i in range(20)
    ]
    assert evaluate(plan(step("k8s.rollout_restart")), ctx(history=recs), policy()).allowed


def test_budget_counts_every_step_of_the_plan() -> None:
    history = [
        ActionRecord(
            at=NOW - timedelta(minutes=10),
            action="k8s.rollout_restart",
            target=f"Deployment/boutique/x{i}",
            namespace="boutique",
        )
        for i in range(4)
    ]
    one = plan(step("k8s.rollout_restart"))
    two = plan(step("k8s.rollout_restart"), step("k8s.rollout_undo", name="frontend"))
    assert evaluate(one, ctx(history=history), policy()).allowed
    d = evaluate(two, ctx(history=history), policy())
    assert not d.allowed
    assert any("namespace budget: 4 mutations in 'boutique'" in r for r in d.reasons)


def test_a_record_without_namespace_counts_against_its_targets_namespace() -> None:
    history = [
        ActionRecord(
            at=NOW - timedelta(minutes=10),
            action="k8s.rollout_restart",
            target=f"Deployment/boutique/x{i}",
        )
        for i in range(5)
    ]
    d = evaluate(plan(step("k8s.rollout_restart")), ctx(history=history), policy())
    assert not d.allowed
    assert any("namespace budget: 5 mutations in 'boutique'" in r for r in d.reasons)


def test_kill_switch_in_policy_or_context() -> None:
    p = plan(step("k8s.rollout_restart"))
    assert not evaluate(p, ctx(kill_switch=True), policy()).allowed
    on = parse_policy("kill_switch: true\n" + BASE, "k.yaml")
    d = evaluate(p, ctx(), on)
    assert not d.allowed
    assert "kill switch is on (in the policy)" in d.reasons[0]


def test_empty_policy_denies_everything() -> None:
    for p in (deny_all(), parse_policy("", "empty.yaml"), parse_policy("# nothing\n", "c.yaml")):
        d = evaluate(plan(step("k8s.rollout_restart")), ctx(), p)
        assert not d.allowed
        assert any("no allow rule permits" in r for r in d.reasons)


def test_escalation_is_always_allowed_and_changes_nothing() -> None:
    esc = RemediationPlan(incident_id="i", playbook_id="escalate")
    d = evaluate(esc, ctx(kill_switch=True), deny_all())
    assert d.allowed
    assert not d.requires_approval
    assert "escalates to a human" in d.reasons[0]


def test_an_escalation_carrying_steps_is_denied() -> None:
    sneaky = plan(step("k8s.rollout_restart")).model_copy(update={"playbook_id": "escalate"})
    d = evaluate(sneaky, ctx(), policy())
    assert not d.allowed
    assert "'escalate' plan must not carry steps" in d.reasons[0]


def test_compensation_steps_must_be_allowed_too() -> None:
    p = plan(
        step("k8s.rollout_restart"),
        compensation=[step("k8s.rollout_undo", namespace="kube-system", name="coredns")],
    )
    d = evaluate(p, ctx(), policy())
    assert not d.allowed
    assert any(r.startswith("compensation step 1") and "protected" in r for r in d.reasons)


@pytest.mark.parametrize(
    "args",
    [
        {"node": "n1", "name": "other", "kind": "Node"},
        {"node": "n1", "namespace": "boutique", "kind": "Node"},
        {"name": "n1", "kind": "Node"},
    ],
)
def test_a_node_step_names_its_node_one_way(args) -> None:
    d = evaluate(plan(Step(action="k8s.cordon", args=args)), ctx(), policy())
    assert not d.allowed
    assert any("names its node as 'node'" in r for r in d.reasons)


def test_a_namespaced_step_without_a_name_is_denied() -> None:
    s = Step(action="k8s.rollout_restart", args={"namespace": "boutique"})
    assert not evaluate(plan(s), ctx(), policy()).allowed


def test_step_with_wrong_kind_or_unknown_action_is_denied() -> None:
    bad = step("k8s.rollout_restart").model_copy(
        update={"args": {"namespace": "boutique", "name": "x", "kind": "Node"}}
    )
    assert not evaluate(plan(bad), ctx(), policy()).allowed
    unknown = step("k8s.rollout_restart").model_copy(update={"action": "k8s.exec"})
    d = evaluate(plan(unknown), ctx(), policy())
    assert not d.allowed
    assert any("not an allow-listed action" in r for r in d.reasons)


def test_selector_fails_closed_without_labels() -> None:
    pol = parse_policy(
        """
allow:
  - name: opted-in
    namespaces: [boutique]
    actions: [k8s.rollout_restart]
    selector: {matchLabels: {aiops.dev/remediate: "true"}}
""",
        "s.yaml",
    )
    p = plan(step("k8s.rollout_restart"))
    target = "Deployment/boutique/cartservice"
    assert not evaluate(p, ctx(), pol).allowed
    assert not evaluate(p, ctx(labels={target: {"aiops.dev/remediate": "no"}}), pol).allowed
    assert evaluate(p, ctx(labels={target: {"aiops.dev/remediate": "true"}}), pol).allowed


@pytest.mark.parametrize("value", ["false", "False", "FALSE", "no", "off", "0"])
def test_the_shipped_opt_out_label_opts_out_however_it_is_spelled(value: str) -> None:
    from pathlib import Path

    from aiops.policy.loader import load_policy

    shipped = load_policy(Path(__file__).resolve().parents[2] / "policies" / "default.yaml")
    p = plan(step("k8s.rollout_restart"))
    target = "Deployment/boutique/cartservice"
    assert evaluate(p, ctx(labels={target: {"app": "cart"}}), shipped).allowed
    opted_out = ctx(labels={target: {"aiops.dev/remediate": value}})
    assert not evaluate(p, opted_out, shipped).allowed


def test_deny_rule_beats_allow_rule() -> None:
    pol = policy("""
deny:
  - name: no-undo-in-boutique
    namespaces: [boutique]
    actions: [k8s.rollout_undo]
""")
    d = evaluate(plan(step("k8s.rollout_undo")), ctx(), pol)
    assert not d.allowed
    assert any("deny rule 'no-undo-in-boutique'" in r for r in d.reasons)
    assert evaluate(plan(step("k8s.rollout_restart")), ctx(), pol).allowed


def test_namespace_patterns() -> None:
    pol = parse_policy(
        "allow:\n  - {name: teams, namespaces: ['team-*'], actions: [k8s.rollout_restart]}\n",
        "p.yaml",
    )
    assert evaluate(plan(step("k8s.rollout_restart", namespace="team-a")), ctx(), pol).allowed
    assert not evaluate(plan(step("k8s.rollout_restart", namespace="teams")), ctx(), pol).allowed


WINDOWS = """
maintenance_windows:
  - {name: friday-freeze, days: [fri], start: "16:00", end: "24:00"}
  - {name: overnight, effect: require_approval, days: [tue], start: "22:00", end: "06:00"}
  - {name: sunday-db, cron: "0 2 * * sun", duration: 3h, namespaces: [boutique]}
approvals:
  default_approvers: [alice]
  identities: {alice: {slack: [UA]}}
"""


@pytest.mark.parametrize(
    ("when", "allowed", "approval", "words"),
    [
        ("2026-11-27T17:00", False, False, "friday-freeze"),  # Friday 17:00
        ("2026-11-27T15:59", True, False, None),
        ("2026-11-24T23:00", True, True, "overnight"),  # Tuesday 23:00
        ("2026-11-25T05:59", True, True, "overnight"),  # Wednesday early morning, same window
        ("2026-11-25T06:00", True, False, None),
        ("2026-11-29T04:59", False, False, "sunday-db"),  # Sunday, cron window 02:00-05:00
        ("2026-11-29T05:00", True, False, None),
    ],
)
def test_maintenance_windows(when, allowed, approval, words) -> None:
    now = datetime.fromisoformat(when).replace(tzinfo=UTC)
    d = evaluate(plan(step("k8s.rollout_restart")), ctx(now=now), policy(WINDOWS))
    assert (d.allowed, d.requires_approval) == (allowed, approval), d.reasons
    if words:
        assert any(words in r for r in d.reasons)


def test_window_scoped_to_namespaces_skips_node_actions() -> None:
    now = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert evaluate(plan(step("k8s.cordon", name="n1")), ctx(now=now), policy(WINDOWS)).allowed


APPROVALS = f"""
approvals:
  timeout: 10m
  on_timeout: reject
  rules:
    - {{name: medium, risk_at_least: medium, approvers: [group:sre]}}
    - {{name: drains, actions: [k8s.drain], approvals: 2, approvers: [alice, bob, dave],
       timeout: 30m, on_timeout: escalate}}
  groups: {{sre: [alice, bob, carol]}}
  identities:
    alice: {{slack: [UA], mcp: [alice@corp], cli: ["{public("alice")}"]}}
    bob: {{slack: [UB], cli: ["{fingerprint(public("bob"))}"]}}
    carol: {{slack: [UC]}}
    dave: {{cli: ["{public("dave")}"]}}
"""


def test_low_risk_runs_without_a_human() -> None:
    d = evaluate(plan(step("k8s.rollout_restart")), ctx(), policy(APPROVALS))
    assert d.allowed
    assert not d.requires_approval
    assert d.approvals_required == 0


def test_medium_risk_needs_one_sre() -> None:
    d = evaluate(plan(step("k8s.rollout_undo"), risk=RiskLevel.MEDIUM), ctx(), policy(APPROVALS))
    assert d.requires_approval
    assert d.approvals_required == 1
    assert d.approvers == ["alice", "bob", "carol"]
    assert d.approval_timeout_s == 600
    assert d.on_timeout is TimeoutAction.REJECT
    assert can_approve("carol", d)
    assert not can_approve("dave", d)


def test_rules_combine_strictly() -> None:
    # medium rule (sre: alice, bob, carol) and drain rule (alice, bob, dave; two people):
    # two approvals, from people both rules accept, with the shorter timeout.
    d = evaluate(plan(step("k8s.drain", name="n1"), risk=RiskLevel.HIGH), ctx(), policy(APPROVALS))
    assert d.allowed
    assert d.approvals_required == 2
    assert d.approvers == ["alice", "bob"]
    assert d.approval_timeout_s == 600
    assert d.on_timeout is TimeoutAction.ESCALATE
    assert sum("approval rule" in r for r in d.reasons) == 2


def test_unsatisfiable_approval_denies() -> None:
    pol = policy("""
approvals:
  rules:
    - {name: a, risk_at_least: low, approvals: 2, approvers: [alice, bob]}
    - {name: b, actions: [k8s.rollout_restart], approvals: 2, approvers: [bob, carol]}
  identities: {alice: {}, bob: {}, carol: {}}
""")
    d = evaluate(plan(step("k8s.rollout_restart")), ctx(), pol)
    assert not d.allowed
    assert any("needs 2 distinct approver(s) but only 1 may approve" in r for r in d.reasons)


def test_identities_resolve_from_every_channel() -> None:
    pol = policy(APPROVALS)
    assert resolve_identity(pol, "slack", "UA") == "alice"
    assert resolve_identity(pol, "mcp", "alice@corp") == "alice"
    assert resolve_identity(pol, "cli", public("alice")) == "alice"
    assert resolve_identity(pol, "cli", public("bob")) == "bob", "listed by its fingerprint"
    assert resolve_identity(pol, "cli", "bob") is None, "a name is no key"
    assert resolve_identity(pol, "slack", "UNKNOWN") is None
    assert resolve_identity(pol, "mcp", "bob") is None


def test_cannot_approve_a_denied_or_automatic_decision() -> None:
    pol = policy(APPROVALS)
    auto = evaluate(plan(step("k8s.rollout_restart")), ctx(), pol)
    denied = evaluate(plan(step("k8s.rollout_restart", namespace="kube-system")), ctx(), pol)
    assert not can_approve("alice", auto)
    assert not can_approve("alice", denied)


def test_policy_version_is_a_content_hash() -> None:
    a = policy()
    b = parse_policy(
        "# a comment\n" + BASE.replace("per_namespace_per_hour: 5", "per_namespace_per_hour:   5"),
        "b.yaml",
    )
    c = parse_policy(
        BASE.replace("per_namespace_per_hour: 5", "per_namespace_per_hour: 6"), "c.yaml"
    )
    assert a.version() == b.version()
    assert a.version() != c.version()
    d = evaluate(plan(step("k8s.rollout_restart")), ctx(), a)
    assert d.policy_version == a.version()
