"""The approval gate against a bare Temporal client, on the real dev server: a decision counts
only with proof of who made it, people are counted (not names or channels), every refusal leaves
the workflow's history as it was, and the decider hears what the workflow actually decided."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.incident import IncidentActivities
from aiops.activities.kill_switch import KillSwitchActivities
from aiops.activities.notify import NotifyActivities
from aiops.config import PrometheusSettings
from aiops.domain import Decision, IncidentReport, IncidentStatus
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.prometheus import Prometheus
from aiops.policy.identities import Channel, fingerprint
from aiops.policy.loader import parse_policy
from aiops.worker import build_worker
from tests.incident_fixtures import (
    FixedInvestigator,
    KillSwitch,
    approve,
    pending,
    policy_yaml,
    reject,
    start,
)
from tests.keys import public, signed, signer
from tests.servers import MetricsTarget, PrometheusServer
from tests.workflows.recording import replay_and_record
from workflows import IncidentWorkflow

Handle = WorkflowHandle[IncidentWorkflow, IncidentReport]


def people_rules(rules: RulesSnapshot, approvals: int = 2) -> RulesSnapshot:
    """alice also goes by a Slack user and two MCP principals; bob is listed by the fingerprint
    of his key; the Slack app and the MCP server are trusted front doors."""
    text = policy_yaml(
        approvals=approvals,
        names={
            "alice": {"slack": ["U0ALICE"], "mcp": ["alice@example.com", "asmith@example.com"]},
            "bob": {"cli": [fingerprint(public("bob"))]},
        },
        doors={"slack-app": "slack", "mcp-server": "mcp"},
    )
    return RulesSnapshot(policy=parse_policy(text), playbooks=rules.playbooks)


async def events(handle: Handle) -> int:
    return len((await handle.fetch_history()).events)


async def quiet(handle: Handle) -> int:
    """The length of the history once the workflow has stopped writing to it (the approval
    request's notification runs right after the request is up)."""
    seen = -1
    while (now := await events(handle)) != seen:
        seen = now
        await asyncio.sleep(0.5)
    return seen


async def admitted(client: Client, handle: Handle, update_id: str) -> None:
    """Until the server has admitted the update (no worker need run): a fixed sleep was not
    enough on a loaded machine, and the two decisions reached the workflow in another order.
    The SDK does not wait for this stage itself, so ask the service."""
    request = PollWorkflowExecutionUpdateRequest(
        namespace=client.namespace,
        update_ref=UpdateRef(
            workflow_execution=WorkflowExecution(workflow_id=handle.id), update_id=update_id
        ),
        identity=client.identity,
        wait_policy=WaitPolicy(
            lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
        ),
    )
    for _ in range(300):
        try:
            await client.workflow_service.poll_workflow_execution_update(
                request, timeout=timedelta(seconds=5)
            )
            return
        except RPCError as exc:
            if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.DEADLINE_EXCEEDED):
                raise
        await asyncio.sleep(0.1)
    raise AssertionError(f"update {update_id} was never admitted")


async def refusal(handle: Handle, decision: Decision) -> str:
    """The type of the validator's refusal; the workflow's history must not change."""
    before = await quiet(handle)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(IncidentWorkflow.decide, decision)
    assert await events(handle) == before, "a refused decision left a trace in the history"
    return str(getattr(refused.value.cause, "type", ""))


async def test_only_proven_decisions_count_and_refusals_change_nothing(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> None:
    rules = people_rules(rules)
    handle = await start(temporal_client, task_queue, rules)
    other = await start(temporal_client, task_queue, rules)
    request = await pending(handle)
    run_id = handle.result_run_id
    assert run_id is not None

    def vouched(door: str, channel: Channel, principal: str) -> Decision:
        """An approval a front door signs for a user it authenticated."""
        return signer(door, channel).sign(
            incident_id=handle.id,
            run_id=str(run_id),
            plan_hash=request.plan_hash,
            approve=True,
            principal=principal,
        )

    # A bare Temporal client naming an approver, as anyone with Temporal credentials could.
    bare = Decision(approve=True, plan_hash=request.plan_hash, identity="alice", channel="cli")
    assert await refusal(handle, bare) == "UnsignedDecision"
    forged = (await signed(handle, "alice", request.plan_hash)).model_copy(
        update={"plan_hash": "0" * 16}
    )
    assert await refusal(handle, forged) == "ForgedDecision"
    assert await refusal(handle, await signed(handle, "mallory", request.plan_hash)) == "NotMapped"
    rogue_door = vouched("rogue", "mcp", "alice@example.com")
    assert await refusal(handle, rogue_door) == "UnknownFrontDoor"
    other_plan = await signed(handle, "alice", "fedcba9876543210")
    assert await refusal(handle, other_plan) == "PlanHashMismatch"
    for_other = await signed(other, "alice", (await pending(other)).plan_hash)
    assert await refusal(handle, for_other) == "WrongIncident"
    assert (await pending(handle)).approved_by == []

    # The first proven approval counts; the same signed decision sent again does not, nor does
    # alice under any other name or channel.
    first = await signed(handle, "alice", request.plan_hash)
    result = await handle.execute_update(IncidentWorkflow.decide, first)
    assert (result.decided_by, result.approvals_needed) == ("alice", 1)
    assert await refusal(handle, first) == "ReplayedDecision"
    assert await refusal(handle, vouched("slack-app", "slack", "U0ALICE")) == "AlreadyApproved"
    for name in ("alice@example.com", "asmith@example.com"):
        assert await refusal(handle, vouched("mcp-server", "mcp", name)) == "AlreadyApproved"
    assert (await pending(handle)).approved_by == ["alice"]
    assert await handle.query(IncidentWorkflow.actions) == []

    # bob's key, listed in the policy by its fingerprint, counts as bob: the plan runs.
    second = await approve(handle, "bob", request)
    assert (second.decided_by, second.status) == ("bob", IncidentStatus.EXECUTING)
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED
    assert [(d.identity, d.channel) for d in report.decisions] == [("alice", "cli"), ("bob", "cli")]
    assert any(e.actor == "bob" and "via cli (own key)" in e.what for e in report.audit)
    await other.terminate("test done")

    # The next run of the same incident id refuses a decision signed for the run before.
    again = await start(temporal_client, task_queue, rules, incident_id=handle.id)
    await pending(again)
    old = await signed(handle, "bob", request.plan_hash)
    assert await refusal(again, old) == "WrongIncident"
    await again.terminate("test done")


async def test_reject_and_approve_together_reject_wins_and_both_hear_it(
    temporal_client: Client,
    task_queue: str,
    executor: KubernetesExecutor,
    prometheus: PrometheusServer,
    kill_switch: KillSwitch,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> None:
    """Both decisions reach the workflow in one workflow task (sent while no worker runs):
    the rejection wins, and the approver is told so, not "it runs now"."""
    activities = IncidentActivities(
        investigator=FixedInvestigator(),
        executor=executor,
        prometheus=Prometheus(PrometheusSettings(url=prometheus.url)),
    )
    acts = [*activities.all(), *NotifyActivities(None).all()]
    acts += KillSwitchActivities(kill_switch.policy).all()
    async with build_worker(temporal_client, task_queue, acts):
        handle = await start(temporal_client, task_queue, rules)
        request = await pending(handle)
    yes = await signed(handle, "alice", request.plan_hash)
    no = await signed(handle, "bob", request.plan_hash, approve=False, reason="not now")
    decided = []
    for n, decision in enumerate((yes, no)):  # in this order: the approval is admitted first
        decided.append(
            asyncio.create_task(
                handle.execute_update(IncidentWorkflow.decide, decision, id=f"decision-{n}")
            )
        )
        await admitted(temporal_client, handle, f"decision-{n}")  # it waits for a worker
    async with build_worker(temporal_client, task_queue, acts):
        approved, rejected = await asyncio.wait_for(asyncio.gather(*decided), 60)
        report = await handle.result()
    assert report.status is IncidentStatus.REJECTED
    assert report.steps == []
    assert (approved.decided_by, approved.status) == ("alice", IncidentStatus.REJECTED)
    assert approved.rejected_by == "bob"
    assert (rejected.decided_by, rejected.status) == ("bob", IncidentStatus.REJECTED)
    await replay_and_record(handle, "incident-approve-and-reject-together")


async def test_a_rejection_answers_rejected(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> None:
    handle = await start(temporal_client, task_queue, rules)
    result = await reject(handle, "bob", await pending(handle))
    assert (result.status, result.rejected_by) == (IncidentStatus.REJECTED, "bob")
    assert (await handle.result()).status is IncidentStatus.REJECTED
