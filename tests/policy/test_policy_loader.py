"""Policy files: the shipped ones load; bad ones are refused with file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.domain import RemediationPlan, Step
from aiops.policy import (
    DEFAULT_PROTECTED,
    LoadError,
    PolicyContext,
    evaluate,
    load_policy,
    parse_policy,
)

from .builders import NOW, REPO


def errors_of(text: str, tmp_path: Path) -> list:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as info:
        load_policy(path)
    for error in info.value.errors:
        assert error.file == str(path)
    return info.value.errors


@pytest.mark.parametrize("name", ["default.yaml", "lab.yaml"])
def test_shipped_policies_load(name: str) -> None:
    policy = load_policy(REPO / "policies" / name)
    assert set(DEFAULT_PROTECTED) <= policy.protected
    assert policy.allow
    assert not policy.kill_switch


def test_a_directory_means_its_default_yaml() -> None:
    assert load_policy(REPO / "policies") == load_policy(REPO / "policies" / "default.yaml")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")
    with pytest.raises(LoadError, match=r"default\.yaml: policy file not found"):
        load_policy(tmp_path)


def test_invalid_yaml(tmp_path: Path) -> None:
    (err,) = errors_of("allow:\n  - name: x\n    actions: [k8s.scale\n", tmp_path)
    assert err.line == 4
    assert "invalid YAML" in err.reason


def test_unknown_action(tmp_path: Path) -> None:
    text = (
        "kill_switch: false\n"
        "allow:\n"
        "  - name: shop\n"
        "    namespaces: [boutique]\n"
        "    actions: [k8s.rollout_restart, k8s.exec]\n"
    )
    (err,) = errors_of(text, tmp_path)
    assert err.line == 3
    assert err.field == "allow[0]"
    assert "unknown action 'k8s.exec'" in err.reason
    assert "k8s.rollout_restart" in err.reason  # says what is allowed


def test_unknown_field_names_its_line(tmp_path: Path) -> None:
    (err,) = errors_of("budgets:\n  per_namespace_per_hour: 3\n  per_hour: 9\n", tmp_path)
    assert (err.line, err.field) == (3, "budgets.per_hour")
    assert "unknown field" in err.reason


def test_bad_value_names_its_line(tmp_path: Path) -> None:
    (err,) = errors_of("budgets:\n  cooldown_per_target: soon\n", tmp_path)
    assert (err.line, err.field) == (2, "budgets.cooldown_per_target")
    assert "invalid duration" in err.reason


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_an_endless_duration_is_refused_at_load(value: str, tmp_path: Path) -> None:
    (err,) = errors_of(f"budgets:\n  cooldown_per_target: {value}\n", tmp_path)
    assert (err.line, err.field) == (2, "budgets.cooldown_per_target")
    assert "finite number of seconds" in err.reason


CONFLICTS = [
    (
        "allow:\n  - {name: a, namespaces: [boutique], actions: [k8s.scale]}\n"
        "deny:\n  - {name: b, namespaces: [boutique], actions: [k8s.scale]}\n",
        4,
        "exactly the scope of allow rule 'a'",
    ),
    (
        "allow:\n  - {name: a, namespaces: [boutique], actions: [k8s.scale]}\n"
        "  - {name: a, namespaces: [shop], actions: [k8s.scale]}\n",
        3,
        "rule name 'a' is used twice",
    ),
    (
        "allow:\n  - name: sys\n    namespaces: [kube-system]\n    actions: [k8s.scale]\n",
        3,
        "allows protected namespace 'kube-system'",
    ),
    (
        "protected_namespaces: [vault]\n"
        "allow:\n  - name: v\n    namespaces: [vault]\n    actions: [k8s.scale]\n",
        4,
        "allows protected namespace 'vault'",
    ),
    (
        "budgets:\n  per_cluster_per_hour: 3\nbudgets:\n  per_cluster_per_hour: 30\n",
        3,
        "duplicate key (first defined on line 1)",
    ),
    (
        "approvals:\n  identities:\n    alice: {slack: [U1]}\n    bob: {slack: [U1]}\n",
        4,
        "slack user 'U1' is mapped to both 'alice' and 'bob'",
    ),
    (
        "approvals:\n  rules:\n    - {name: two, approvals: 2, approvers: [alice]}\n"
        "  identities: {alice: {}}\n",
        3,
        "needs 2 approvals but only 1 identities may approve",
    ),
    (
        "approvals:\n  rules:\n    - {name: r, approvers: [mallory]}\n",
        3,
        "approver 'mallory' is not under approvals.identities",
    ),
    (
        "protected_namespaces: [kube-system]\n"
        "unprotect:\n  - {namespace: kube-system, reason: we run our own dns here}\n",
        3,
        "both protected and unprotected",
    ),
    (
        "bounds:\n  scale: {ceiling: 3, min_replicas: 5}\n",
        2,
        "min_replicas (5) is above the ceiling (3)",
    ),
    (
        "maintenance_windows:\n  - {name: w, days: [fri], start: '16:00'}\n",
        2,
        "a weekly window needs days, start and end",
    ),
    (
        "maintenance_windows:\n  - {name: w, cron: '0 25 * * *', duration: 1h}\n",
        2,
        "invalid cron hour field",
    ),
]


@pytest.mark.parametrize(("text", "line", "words"), CONFLICTS)
def test_conflicting_or_broken_rules_are_refused(text, line, words, tmp_path: Path) -> None:
    errors = errors_of(text, tmp_path)
    assert any(words in e.reason and e.line == line for e in errors), [str(e) for e in errors]


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "allow:\n"
        "  - {name: a, namespaces: [kube-public], actions: [k8s.scale]}\n"
        "  - {name: b, namespaces: [kube-system], actions: [k8s.drain]}\n"
    )
    errors = errors_of(text, tmp_path)
    # b is refused by the schema (drain acts on Nodes); once fixed, a's conflict is reported.
    assert [e.line for e in errors] == [3]
    fixed = text.replace("actions: [k8s.drain]", "actions: [k8s.scale]")
    assert sorted(e.line for e in errors_of(fixed, tmp_path)) == [2, 3]


def test_unprotecting_a_default_needs_an_explicit_reason(tmp_path: Path) -> None:
    (err,) = errors_of("unprotect:\n  - {namespace: kube-system, reason: x}\n", tmp_path)
    assert err.line == 2
    policy = parse_policy(
        "unprotect:\n  - {namespace: kube-public, reason: our status page lives here}\n"
    )
    assert "kube-public" not in policy.protected
    assert "kube-system" in policy.protected
    policy = parse_policy(
        "unprotect:\n  - {namespace: kube-public, reason: our status page lives here}\n"
        "allow:\n  - {name: status, namespaces: [kube-public], actions: [k8s.rollout_restart]}\n"
    )
    restart = Step(action="k8s.rollout_restart", args={"namespace": "kube-public", "name": "st"})
    plan = RemediationPlan(incident_id="i", playbook_id="p", steps=[restart])
    decision = evaluate(plan, PolicyContext(now=NOW), policy)
    assert decision.allowed
    assert any("unprotected: our status page lives here" in r for r in decision.reasons)


def test_listing_protected_namespaces_cannot_drop_the_defaults() -> None:
    policy = parse_policy("protected_namespaces: [vault]\n")
    assert policy.protected == {*DEFAULT_PROTECTED, "vault"}


def test_protected_namespaces_may_be_patterns(tmp_path: Path) -> None:
    policy = parse_policy("protected_namespaces: ['openshift-*']\n")
    assert policy.is_protected("openshift-monitoring")
    assert not policy.is_protected("openshift")
    (err,) = errors_of(
        "protected_namespaces: ['openshift-*']\n"
        "allow:\n  - {name: o, namespaces: [openshift-dns], actions: [k8s.scale]}\n",
        tmp_path,
    )
    assert err.line == 3
    assert "allows protected namespace 'openshift-dns'" in err.reason


def test_an_empty_selector_is_refused(tmp_path: Path) -> None:
    text = (
        "allow:\n  - name: all\n    namespaces: [a]\n    actions: [k8s.scale]\n    selector: {}\n"
    )
    (err,) = errors_of(text, tmp_path)
    assert "empty selector would match everything" in err.reason
    assert err.line == 5


def test_error_text_is_file_line_field_reason(tmp_path: Path) -> None:
    (err,) = errors_of("kill_switch: maybe\n", tmp_path)
    assert str(err).startswith(f"{tmp_path / 'p.yaml'}:1: kill_switch: ")
