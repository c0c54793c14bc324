"""The incident path on the real Temporal dev server: real playbooks, policy evaluated in the
workflow, the executor acting through the official client on the lab Kubernetes API, and
preconditions and verification through a real Prometheus."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from aiops_lab.kubeapi.server import LabApiServer
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from aiops.activities.contracts import EXECUTE_STEP, RulesSnapshot
from aiops.activities.incident import IncidentActivities
from aiops.config import PrometheusSettings
from aiops.domain import FaultType, Incident, IncidentStatus, RcaReport
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.prometheus import Prometheus
from aiops.policy.loader import parse_policy
from aiops.worker import build_worker
from tests.incident_fixtures import (
    NS,
    FixedInvestigator,
    approve,
    key_of,
    make_incident,
    pending,
    reject,
    restarted_by,
    start,
    with_verification_timeout,
)
from tests.keys import signed
from tests.servers import MetricsTarget, PrometheusServer, scraped, wait_until
from tests.workflows.recording import activity_events, replay_and_record
from workflows import IncidentWorkflow
from workflows.incident import IncidentInput


async def test_approved_restart_runs_once_on_the_cluster_and_is_verified(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    executor: KubernetesExecutor,
    healthy_cart: MetricsTarget,
) -> None:
    handle = await start(temporal_client, task_queue, rules)
    request = await pending(handle)
    assert request.plan.playbook_id == "restart-deployment"
    assert request.plan.target == "cartservice"
    assert any("restart" in diff for diff in request.dry_run), request.dry_run
    assert restarted_by(executor) != key_of(handle), "nothing runs before approval"

    await approve(handle, "alice", request)
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED, report.audit
    assert report.verified is True
    assert restarted_by(executor) == key_of(handle)
    assert [s.action for s in report.steps] == ["k8s.rollout_restart"]
    assert any(e.actor == "alice" and "approved plan" in e.what for e in report.audit)
    actions = await handle.query(IncidentWorkflow.actions)
    assert [(a.action, a.target) for a in actions] == [
        ("k8s.rollout_restart", f"Deployment/{NS}/cartservice")
    ]
    await replay_and_record(handle, "incident-approved-verified")


async def test_the_next_incident_with_the_same_id_acts_again(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    executor: KubernetesExecutor,
    healthy_cart: MetricsTarget,
) -> None:
    """Incidents of one namespace share a workflow id; the executor keys its once-only actions
    by run too, so the second incident's restart is a restart, not "already done"."""
    first = await start(temporal_client, task_queue, rules)
    await approve(first, "alice", await pending(first))
    assert (await first.result()).status is IncidentStatus.RESOLVED
    revision = executor.apps.read_namespaced_deployment("cartservice", NS).metadata.annotations[
        "deployment.kubernetes.io/revision"
    ]

    second = await start(temporal_client, task_queue, rules, incident_id=first.id)
    request = await pending(second)
    assert not any("already restarted" in diff for diff in request.dry_run), request.dry_run
    await approve(second, "alice", request)
    report = await second.result()
    assert report.status is IncidentStatus.RESOLVED, report.audit
    assert report.steps[0].changed, report.steps[0].message
    assert restarted_by(executor) == key_of(second) != key_of(first)
    after = executor.apps.read_namespaced_deployment("cartservice", NS).metadata.annotations[
        "deployment.kubernetes.io/revision"
    ]
    assert int(after) == int(revision) + 1


class SettlingInvestigator(FixedInvestigator):
    """Sees only symptoms in the first seconds of the fault, the cause later."""

    def __init__(self) -> None:
        super().__init__(FaultType.ERRORS)
        self.calls = 0

    async def investigate(self, incident: Incident) -> RcaReport:
        self.calls += 1
        self.fault = FaultType.ERRORS if self.calls == 1 else FaultType.MEMORY
        return await super().investigate(incident)


async def test_an_escalation_on_young_evidence_looks_again_once_it_settles(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    executor: KubernetesExecutor,
    healthy_cart: MetricsTarget,
) -> None:
    acts.investigator = SettlingInvestigator()
    handle = await start(
        temporal_client, task_queue, rules, opened_at=datetime.now(UTC), settle_s=3
    )
    request = await pending(handle)
    assert request.plan.playbook_id == "restart-deployment"
    assert await handle.query(IncidentWorkflow.status) is IncidentStatus.AWAITING_APPROVAL
    audit = [e.what for e in await handle.query(IncidentWorkflow.audit)]
    assert any("no remedy for the evidence so far (errors); looking again" in a for a in audit), (
        audit
    )
    assert [a for a in audit if a.startswith("root cause:")] == [
        "root cause: cartservice: errors",
        "root cause: cartservice leaks memory",
    ]
    await approve(handle, "alice", request)
    assert (await handle.result()).status is IncidentStatus.RESOLVED
    await replay_and_record(handle, "incident-settled-reinvestigated")

    # Evidence older than the settle time escalates at once, with one investigation.
    acts.investigator = SettlingInvestigator()
    old = await start(temporal_client, task_queue, rules)
    assert (await old.result()).status is IncidentStatus.ESCALATED
    assert acts.investigator.calls == 1


async def test_a_plan_the_executor_refuses_in_its_dry_run_escalates(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    executor: KubernetesExecutor,
    lab_api: LabApiServer,
) -> None:
    """emailservice's bad release was already rolled back by aiops; a later "bad rollout"
    diagnosis would undo the undo, which the executor refuses: the incident escalates with the
    reason in its audit trail, and nothing changes."""
    good = lab_api.cluster.get("deployments", NS, "emailservice")["spec"]["template"]
    lab_api.cluster.rollout(NS, "emailservice", "emailservice:bad", {})
    assert executor.rollout_undo(NS, "emailservice", "incident-earlier").changed
    acts.investigator = FixedInvestigator(FaultType.BAD_ROLLOUT, target="emailservice")

    handle = await start(temporal_client, task_queue, rules)
    report = await handle.result()
    assert report.status is IncidentStatus.ESCALATED, report.audit
    assert report.plan is not None and report.plan.playbook_id == "rollback-deployment"
    assert report.steps == []
    assert any(
        "dry-run refused, escalating" in e.what and "aiops rolled back from" in e.what
        for e in report.audit
    ), report.audit
    assert (
        lab_api.cluster.get("deployments", NS, "emailservice")["spec"]["template"]["spec"]
        == good["spec"]
    )


async def test_failed_verification_escalates(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
    prometheus: PrometheusServer,
) -> None:
    handle = await start(
        temporal_client, task_queue, with_verification_timeout(rules, "restart-deployment", 4)
    )
    request = await pending(handle)
    healthy_cart.values[
        f'kube_deployment_status_replicas_available{{namespace="{NS}",deployment="cartservice"}}'
    ] = 1
    wait_until(
        lambda: scraped(prometheus.url, "kube_deployment_status_replicas_available == 1"),
        15,
        "the degraded value",
    )
    try:
        await approve(handle, "alice", request)
        report = await handle.result()
    finally:
        healthy_cart.values[
            f'kube_deployment_status_replicas_available{{namespace="{NS}",'
            'deployment="cartservice"}'
        ] = 2
    assert report.status is IncidentStatus.ESCALATED
    assert report.verified is False
    assert any("not verified within" in e.what for e in report.audit)
    await replay_and_record(handle, "incident-verification-failed-escalated")


@pytest.mark.parametrize("fault", [FaultType.TRAFFIC_SURGE])
async def test_failed_verification_runs_the_compensation_on_the_cluster(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    executor: KubernetesExecutor,
    healthy_cart: MetricsTarget,
) -> None:
    """Scaling out under a surge did not help (no latency data verifies it): the playbook's
    compensation scales the Deployment back to what it was."""
    replicas = executor.apps.read_namespaced_deployment("cartservice", NS).spec.replicas
    rules = with_verification_timeout(rules, "scale-deployment", 3)
    handle = await start(temporal_client, task_queue, rules)
    request = await pending(handle)
    assert request.plan.playbook_id == "scale-deployment"
    await approve(handle, "alice", request)
    report = await handle.result()
    assert report.status is IncidentStatus.ROLLED_BACK, report.audit
    assert report.verified is False
    assert [(s.action, s.ok, s.changed) for s in report.steps] == [
        ("k8s.scale", True, True),
        ("k8s.scale", True, True),
    ]
    assert executor.apps.read_namespaced_deployment("cartservice", NS).spec.replicas == replicas
    actions = await handle.query(IncidentWorkflow.actions)
    assert [a.outcome for a in actions] == ["failed", "succeeded"], "the failure is on record"
    await replay_and_record(handle, "incident-verification-failed-compensated")


@pytest.mark.parametrize(
    ("identity", "plan_hash", "error"),
    [
        ("mallory", None, "is not mapped to a person"),
        ("alice", "0000000000000000", "does not match the pending plan"),
    ],
)
async def test_decide_validator_refuses_and_nothing_runs(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
    identity: str,
    plan_hash: str | None,
    error: str,
) -> None:
    handle = await start(temporal_client, task_queue, rules)
    request = await pending(handle)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            IncidentWorkflow.decide,
            await signed(handle, identity, plan_hash or request.plan_hash),
        )
    assert error in str(refused.value.cause)
    assert await handle.query(IncidentWorkflow.status) is IncidentStatus.AWAITING_APPROVAL
    assert await handle.query(IncidentWorkflow.actions) == []
    assert not any(e.actor == identity for e in await handle.query(IncidentWorkflow.audit))
    await handle.terminate("test done")


async def test_rejection_closes_without_running_anything(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> None:
    handle = await start(temporal_client, task_queue, rules)
    request = await pending(handle)
    await reject(handle, "bob", request)
    report = await handle.result()
    assert report.status is IncidentStatus.REJECTED
    assert report.steps == []
    await replay_and_record(handle, "incident-rejected")


async def test_two_person_rule_needs_two_distinct_approvers(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> None:
    handle = await start(temporal_client, task_queue, rules, approvals=2)
    request = await pending(handle)
    assert request.decision.approvals_required == 2
    first = await approve(handle, "alice", request)
    assert first.approvals_needed == 1
    with pytest.raises(WorkflowUpdateFailedError):
        await approve(handle, "alice", request)
    assert (await pending(handle)).approved_by == ["alice"]
    assert await handle.query(IncidentWorkflow.actions) == []
    await approve(handle, "bob", request)
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED
    assert [d.identity for d in report.decisions] == ["alice", "bob"]
    await replay_and_record(handle, "incident-two-approvers")


async def test_approval_after_expiry_is_refused_and_nothing_runs(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    executor: KubernetesExecutor,
    healthy_cart: MetricsTarget,
) -> None:
    before = executor.apps.read_namespaced_deployment("cartservice", NS).metadata.generation
    handle = await start(temporal_client, task_queue, rules, timeout="2s")
    request = await pending(handle)
    report = await handle.result()
    assert report.status is IncidentStatus.REJECTED
    assert any("approval expired" in e.what for e in report.audit)
    with pytest.raises(RPCError, match="already completed"):
        await approve(handle, "alice", request)
    assert report.steps == []
    assert report.decisions == []
    # Nothing reached the cluster: no restart for this incident, the Deployment's spec untouched.
    assert restarted_by(executor) != key_of(handle)
    after = executor.apps.read_namespaced_deployment("cartservice", NS).metadata.generation
    assert after == before
    history = await replay_and_record(handle, "incident-approval-expired")
    assert not activity_events(history, EXECUTE_STEP), "no step was even scheduled"


async def test_timeout_escalates_when_policy_says_so(
    time_skipping_env: WorkflowEnvironment,
    executor: KubernetesExecutor,
    rules: RulesSnapshot,
    prometheus: PrometheusServer,
    healthy_cart: MetricsTarget,
) -> None:
    """A 15-minute approval window, skipped through on the time-skipping server."""
    client = time_skipping_env.client
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    activities = IncidentActivities(
        investigator=FixedInvestigator(),
        executor=executor,
        prometheus=Prometheus(PrometheusSettings(url=prometheus.url)),
    )
    async with build_worker(client, queue, activities.all()):
        # The time-skipping server has no custom search attributes: incidents must still run.
        handle = await start(
            client, queue, rules, index=False, timeout="15m", on_timeout="escalate"
        )
        report = await handle.result()
        await replay_and_record(handle, "incident-approval-timeout-escalated")
    assert report.status is IncidentStatus.ESCALATED
    assert report.steps == []


async def test_policy_denial_escalates_without_asking_anyone(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
) -> None:
    incident = make_incident()
    denied = RulesSnapshot(policy=parse_policy("allow: []\n"), playbooks=rules.playbooks)
    handle = await temporal_client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(
            incident=incident, rules=RulesSnapshot(policy=denied.policy, playbooks=denied.playbooks)
        ),
        id=incident.id,
        task_queue=task_queue,
    )
    report = await handle.result()
    assert report.status is IncidentStatus.ESCALATED
    assert report.policy is not None
    assert not report.policy.allowed
    assert report.steps == []
    await replay_and_record(handle, "incident-policy-denied")
