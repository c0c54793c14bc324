"""The notify activities called by name from a workflow, through the real dev server and the
pydantic data converter, as the incident workflow calls them."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from aiops.activities.notify import (
    NOTIFY_APPROVAL_REQUEST,
    NOTIFY_PROGRESS,
    NotifyActivities,
    NotifyApprovalInput,
    NotifyProgressInput,
    NotifyResult,
)
from aiops.approvals.slack.blocks import ACTIONS_BLOCK
from tests.approvals.slack.stub import SlackStub
from tests.approvals.slack.test_blocks import REPORT, request


@workflow.defn(name="NotifyProbeWorkflow", sandboxed=False)
class NotifyProbeWorkflow:
    @workflow.run
    async def run(self, inp: NotifyApprovalInput) -> list[NotifyResult]:
        results = []
        for _ in range(2):  # as if the first attempt's result were lost
            results.append(
                await workflow.execute_activity(
                    NOTIFY_APPROVAL_REQUEST,
                    inp,
                    result_type=NotifyResult,
                    start_to_close_timeout=timedelta(seconds=10),
                )
            )
        results.append(
            await workflow.execute_activity(
                NOTIFY_PROGRESS,
                NotifyProgressInput(
                    incident_id=inp.request.incident_id,
                    plan_hash=inp.request.plan_hash,
                    key="closed",
                    text="approval expired; policy says escalate",
                    outcome="expired",
                ),
                result_type=NotifyResult,
                start_to_close_timeout=timedelta(seconds=10),
            )
        )
        return results


async def test_workflow_posts_once_then_closes_the_message(
    temporal_client: Client,
    slack: SlackStub,
    notify: NotifyActivities,
) -> None:
    queue = f"notify-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal_client, task_queue=queue, workflows=[NotifyProbeWorkflow], activities=notify.all()
    ):
        results = await temporal_client.execute_workflow(
            NotifyProbeWorkflow.run,
            NotifyApprovalInput(request=request(), report=REPORT),
            id=f"incident-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            result_type=list[NotifyResult],
        )
    assert [r.detail for r in results] == ["posted", "updated", "posted, message updated"]
    assert len(slack.of("chat.postMessage")) == 2  # the approval message and one thread reply
    msg = slack.messages[results[0].ts or ""]
    assert not any(b.get("block_id") == ACTIONS_BLOCK for b in msg.blocks)
    assert "*expired*" in repr(msg.blocks)
    assert [m.text for m in slack.thread(msg.ts)] == ["approval expired; policy says escalate"]


async def test_the_next_incident_with_the_same_id_gets_its_own_message(
    temporal_client: Client,
    slack: SlackStub,
    notify: NotifyActivities,
) -> None:
    """Incidents of one namespace share a workflow id; the second run must not update (or
    stay silent in) the first run's closed message."""
    queue = f"notify-{uuid.uuid4().hex[:8]}"
    incident_id = f"incident-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal_client, task_queue=queue, workflows=[NotifyProbeWorkflow], activities=notify.all()
    ):
        runs = [
            await temporal_client.execute_workflow(
                NotifyProbeWorkflow.run,
                NotifyApprovalInput(request=request(), report=REPORT),
                id=incident_id,
                task_queue=queue,
                result_type=list[NotifyResult],
            )
            for _ in range(2)
        ]
    assert [[r.detail for r in results] for results in runs] == [
        ["posted", "updated", "posted, message updated"]
    ] * 2
    first, second = (results[0].ts for results in runs)
    assert first != second
    assert len(slack.of("chat.postMessage")) == 4
    for ts in (first, second):
        assert [m.text for m in slack.thread(ts or "")] == [
            "approval expired; policy says escalate"
        ]
