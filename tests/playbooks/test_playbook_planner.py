"""Choosing and rendering a plan from an RcaReport with the shipped playbooks."""

from __future__ import annotations

import pytest

from aiops.domain import Evidence, FaultType, RcaReport, RiskLevel
from aiops.playbooks import Observed, escalation, load_playbooks, plan_remediation
from aiops.profiles import Assembly, assemble, load_profiles

from .builders import NOW, PLAYBOOKS, report

SHIPPED = load_playbooks(PLAYBOOKS)
BASE = {
    f: frozenset({"namespace", "pod", "deployment", "node"})
    for f in (
        "kube_deployment_status_replicas_available",
        "kube_deployment_spec_replicas",
        "kube_pod_container_status_restarts_total",
        "kube_pod_info",
        "kube_node_spec_unschedulable",
        "kube_pod_status_phase",
        "container_cpu_usage_seconds_total",
    )
}
OTEL_SERVER = frozenset({"service_name", "k8s_namespace_name", "rpc_grpc_status_code"})


def live(families: dict[str, frozenset[str]]) -> Assembly:
    """The signals a cluster with these metric families feeds."""
    shipped = load_profiles()
    return assemble(shipped.vocabulary, shipped.profiles.values(), families)


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
    # the target's own series: its deployment, and its pods by name
    assert 'kube_deployment_status_replicas_available{deployment!="",deployment="cartservice",' in q
    assert 'namespace="boutique"' in q
    assert 'kube_pod_container_status_restarts_total{container!="",namespace="boutique",' in q
    assert 'pod=~"cartservice-[a-z0-9]+-[a-z0-9]+"}[3m]' in q
    assert "{{" not in q
    assert (plan.verification.hold_for_s, plan.verification.timeout_s) == (180, 600)
    assert [c.k8s for c in planned.preconditions if c.k8s] == ["deployment_exists"]
    assert "memory on Deployment boutique/cartservice (confidence 0.90)" in plan.rationale


def test_rollback_verification_follows_the_request_metrics_the_cluster_has() -> None:
    istio = live({**BASE, "istio_requests_total": frozenset()})
    plan = plan_remediation(report("bad_rollout"), SHIPPED, signals=istio).plan
    assert [s.action for s in plan.steps] == ["k8s.rollout_undo"]
    assert plan.risk is RiskLevel.MEDIUM
    assert plan.verification is not None
    q = plan.verification.query
    assert 'destination_workload="cartservice"' in q
    # the worst of both sides: callers' sidecars count what a crashing pod's own cannot
    assert "destination_workload_namespace, reporter)" in q
    assert "rpc_server_duration_milliseconds" not in q
    otel = live({**BASE, "rpc_server_duration_milliseconds": OTEL_SERVER})
    plan = plan_remediation(report("bad_rollout"), SHIPPED, signals=otel).plan
    assert plan.verification is not None
    q = plan.verification.query
    assert 'rpc_server_duration_milliseconds_count{rpc_grpc_status_code=~"2|4|12|13|14|15",' in q
    assert 'service_name="cartservice"' in q and "istio" not in q
    assert "error_ratio < 0.05 (where measured)" in plan.rationale


def test_without_request_metrics_rollback_verifies_by_availability_and_scaling_is_refused() -> None:
    bare = live(BASE)
    plan = plan_remediation(report("crashloop"), SHIPPED, signals=bare).plan
    assert plan.playbook_id == "rollback-deployment"
    assert plan.verification is not None
    assert "error_ratio" not in plan.verification.query
    assert "not measured here: error_ratio (istio needs istio_requests_total" in plan.rationale
    planned = plan_remediation(report("traffic_surge"), SHIPPED, Observed(replicas=2), bare)
    assert planned.plan.is_escalation
    (why,) = planned.skipped
    assert why.startswith("scale-deployment: cannot check latency_p99 < 0.5 (")
    assert "otel-semconv needs http_server_request_duration_seconds" in why


def test_a_playbook_no_live_signal_can_verify_is_refused_with_the_reason() -> None:
    nothing = live({})
    planned = plan_remediation(
        report("memory"), SHIPPED, Observed(pod="cartservice-7d9-abcde"), nothing
    )
    assert planned.plan.is_escalation
    assert any(
        s.startswith("restart-deployment: cannot check replicas_available >= 1")
        and "base needs kube_deployment_status_replicas_available" in s
        for s in planned.skipped
    ), planned.skipped


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
    assert f"< {expected})" in plan.verification.query  # fewer replicas break it
    assert "latency_p99 < 0.5" in plan.rationale


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
