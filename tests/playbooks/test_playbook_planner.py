"""Choosing and rendering a plan from an RcaReport with the shipped playbooks."""

from __future__ import annotations

import pytest

from aiops.domain import Evidence, FaultType, RcaReport, RiskLevel
from aiops.playbooks import Observed, escalation, load_playbooks, plan_remediation

from .builders import NOW, PLAYBOOKS, report

SHIPPED = load_playbooks(PLAYBOOKS)

LAB_MAPPING = {
    FaultType.BAD_ROLLOUT: "rollback-deployment",
    FaultType.CRASHLOOP: "rollback-deployment",
    FaultType.MEMORY: "restart-deployment",
    FaultType.CPU: "restart-deployment",
    FaultType.TRAFFIC_SURGE: "scale-deployment",
    FaultType.NODE: "cordon-and-drain-node",
    FaultType.LATENCY: "escalate",
    FaultType.ERRORS: "escalate",
    FaultType.DEPENDENCY: "escalate",
    # No safe remedy for a network fault: restarting or moving pods does not fix a lossy link.
    FaultType.NETWORK_LATENCY: "escalate",
    FaultType.NETWORK_LOSS: "escalate",
    FaultType.UNKNOWN: "escalate",
}


@pytest.mark.parametrize("fault", list(FaultType))
def test_lab_mapping_covers_every_fault(fault: FaultType) -> None:
    kind = "Node" if fault is FaultType.NODE else "Deployment"
    target = "node-2" if fault is FaultType.NODE else "cartservice"
    planned = plan_remediation(
        report(fault, target=target, kind=kind), SHIPPED, Observed(replicas=3)
    )
    assert planned.plan.playbook_id == LAB_MAPPING[fault]
    if planned.plan.is_escalation:
        assert not planned.plan.steps
        assert planned.plan.rationale.startswith("escalated to a human: ")
    else:
        assert planned.plan.steps
        assert planned.plan.verification is not None


def test_restart_plan_is_rendered_from_the_report() -> None:
    planned = plan_remediation(report("memory"), SHIPPED)
    plan = planned.plan
    (step,) = plan.steps
    assert step.action == "k8s.rollout_restart"
    assert step.args == {
        "namespace": "boutique",
        "name": "cartservice",
        "incident_id": "inc-42",
        "kind": "Deployment",
    }
    assert step.target == "Deployment/boutique/cartservice"
    assert plan.risk is RiskLevel.LOW
    assert plan.compensation == []
    assert plan.verification is not None
    q = plan.verification.query
    assert (
        'kube_deployment_status_replicas_available{namespace="boutique",deployment="cartservice"}'
        in q
    )
    assert "kube_pod_container_status_restarts_total" in q
    assert "{{" not in q
    assert (plan.verification.hold_for_s, plan.verification.timeout_s) == (180, 600)
    assert [c.k8s for c in planned.preconditions if c.k8s] == ["deployment_exists"]
    assert "memory on Deployment boutique/cartservice (confidence 0.90)" in plan.rationale


def test_rollback_verification_uses_istio_error_ratio() -> None:
    plan = plan_remediation(report("bad_rollout"), SHIPPED).plan
    assert [s.action for s in plan.steps] == ["k8s.rollout_undo"]
    assert plan.risk is RiskLevel.MEDIUM
    assert plan.verification is not None
    assert 'destination_workload="cartservice"' in plan.verification.query
    assert 'response_code=~"5.."' in plan.verification.query


@pytest.mark.parametrize(
    ("current", "expected"),
    [(1, 2), (2, 3), (3, 5), (4, 6), (10, 15), (14, 20), (19, 20)],
)
def test_scale_to_min_of_ceil_current_times_factor_and_ceiling(current: int, expected: int) -> None:
    planned = plan_remediation(report("traffic_surge"), SHIPPED, Observed(replicas=current))
    plan = planned.plan
    assert plan.playbook_id == "scale-deployment"
    (step,) = plan.steps
    assert step.args["replicas"] == expected
    assert isinstance(step.args["replicas"], int)
    assert planned.parameters == {"factor": 1.5, "replicas": expected}
    # Compensation goes back to what was observed.
    assert plan.compensation[0].args["replicas"] == current
    assert plan.verification is not None
    assert f">= {expected}" in plan.verification.query
    assert "istio_request_duration_milliseconds_bucket" in plan.verification.query


def test_scale_at_the_ceiling_escalates() -> None:
    plan = plan_remediation(report("traffic_surge"), SHIPPED, Observed(replicas=20)).plan
    assert plan.is_escalation
    assert "already runs 20 replicas" in plan.rationale


def test_scale_without_observed_replicas_escalates() -> None:
    plan = plan_remediation(report("traffic_surge"), SHIPPED).plan
    assert plan.is_escalation
    assert "needs observed.replicas" in plan.rationale


def test_low_confidence_escalates_with_the_reason() -> None:
    plan = plan_remediation(report("memory", confidence=0.3), SHIPPED).plan
    assert plan.is_escalation
    assert "confidence 0.30 is below its minimum 0.60" in plan.rationale
    assert (plan.namespace, plan.target) == ("boutique", "cartservice")


def test_no_hypothesis_escalates() -> None:
    empty = RcaReport(incident_id="i", hypotheses=[], summary="", started_at=NOW, finished_at=NOW)
    plan = plan_remediation(empty, SHIPPED).plan
    assert plan.is_escalation
    assert "no hypothesis" in plan.rationale


def test_wrong_target_kind_escalates() -> None:
    plan = plan_remediation(report("node", kind="Deployment"), SHIPPED).plan
    assert plan.is_escalation
    assert "acts on Node, not Deployment" in plan.rationale


def test_missing_namespace_escalates() -> None:
    plan = plan_remediation(report("memory", namespace=None), SHIPPED).plan
    assert plan.is_escalation
    assert "target.namespace" in plan.rationale


@pytest.mark.parametrize(
    "name", ['cart"}) or vector(1', "Cart", "a/b", "x" * 300, "{{ x }}", "cartservice\n"]
)
def test_names_that_could_change_a_query_are_refused(name: str) -> None:
    plan = plan_remediation(report("memory", target=name), SHIPPED).plan
    assert plan.is_escalation
    assert "not a valid Kubernetes name" in plan.rationale


def test_a_namespace_with_a_trailing_newline_is_not_rendered_into_a_step() -> None:
    # `$` matches before a final newline: names are checked with fullmatch.
    plan = plan_remediation(report("memory", namespace="kube-system\n"), SHIPPED).plan
    assert plan.is_escalation and not plan.steps
    assert "not a valid Kubernetes name" in plan.rationale


def test_pod_evidence_enables_delete_pod_but_restart_wins_by_priority() -> None:
    ev = [Evidence(kind="pod", summary="OOMKilled", source="Pod/boutique/cartservice-7d9-abcde")]
    planned = plan_remediation(report("memory", evidence=ev), SHIPPED)
    assert planned.plan.playbook_id == "restart-deployment"
    only_delete = [pb for pb in SHIPPED.playbooks.values() if pb.id == "delete-pod"]
    plan = plan_remediation(report("memory", evidence=ev), only_delete).plan
    assert plan.playbook_id == "delete-pod"
    assert plan.steps[0].args["name"] == "cartservice-7d9-abcde"
    assert plan.steps[0].target == "Pod/boutique/cartservice-7d9-abcde"
    # Without a pod named anywhere, delete-pod does not apply.
    assert plan_remediation(report("memory"), only_delete).plan.is_escalation


def test_node_plan_cordons_then_drains() -> None:
    plan = plan_remediation(report("node", target="node-2", kind="Node"), SHIPPED).plan
    assert [(s.action, s.target) for s in plan.steps] == [
        ("k8s.cordon", "Node/node-2"),
        ("k8s.drain", "Node/node-2"),
    ]
    assert plan.risk is RiskLevel.HIGH
    assert plan.namespace is None


def test_planning_is_deterministic() -> None:
    a = plan_remediation(report("traffic_surge"), SHIPPED, Observed(replicas=4)).plan
    b = plan_remediation(report("traffic_surge"), SHIPPED, Observed(replicas=4)).plan
    assert a == b
    assert a.plan_hash() == b.plan_hash()


def test_escalation_for_a_failed_precondition() -> None:
    plan = escalation(report("memory"), "precondition failed: the Deployment does not exist")
    assert plan.is_escalation
    assert (plan.namespace, plan.target, plan.steps) == ("boutique", "cartservice", [])
    assert plan.rationale == (
        "escalated to a human: precondition failed: the Deployment does not exist"
    )
