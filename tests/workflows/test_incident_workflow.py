"""The walking skeleton of the incident path, on the real Temporal dev server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from aiops.activities.incident import IncidentActivities
from aiops.domain import (
    Anomaly,
    ApprovalRequest,
    Decision,
    Direction,
    Incident,
    IncidentReport,
    IncidentStatus,
    PolicyDecision,
    TimeoutAction,
)
from aiops.worker import build_worker
from workflows import IncidentWorkflow
from workflows.incident import IncidentInput

HISTORIES = Path(__file__).parent / "histories"


def make_incident(service: str = "cartservice") -> Incident:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    return Incident(
        id=f"incident-{uuid.uuid4().hex[:12]}",
        fingerprint="f" * 16,
        namespace="boutique",
        service=service,
        opened_at=now,
        anomalies=[
            Anomaly(
                signal="error_ratio", series={"workload": service},
                query=f'sum(rate(istio_requests_total{{destination_workload="{service}"}}[1m]))',
                start=now, score=0.9, direction=Direction.UP, value=0.3, baseline=0.001,
            ),
            Anomaly(
                signal="p99_latency", series={"workload": "frontend"},
                query="histogram_quantile(0.99, ...)", start=now, score=0.4,
                direction=Direction.UP,
            ),
        ],
    )


def approval(**overrides: object) -> PolicyDecision:
    base: dict[str, object] = {
        "allowed": True, "requires_approval": True, "approvers": ["alice", "bob"],
        "approval_timeout_s": 600,
    }
    base.update(overrides)
    return PolicyDecision.model_validate(base)


@pytest.fixture
async def worker_and_acts(
    temporal_client: Client, task_queue: str
) -> AsyncIterator[IncidentActivities]:
    acts = IncidentActivities()
    async with build_worker(temporal_client, task_queue, acts.all()):
        yield acts


async def start(
    client: Client, task_queue: str, decision: PolicyDecision
) -> WorkflowHandle[IncidentWorkflow, IncidentReport]:
    incident = make_incident()
    return await client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(incident=incident, approval=decision),
        id=incident.id,
        task_queue=task_queue,
    )


async def pending(handle: WorkflowHandle[IncidentWorkflow, IncidentReport]) -> ApprovalRequest:
    for _ in range(100):
        request = await handle.query(IncidentWorkflow.pending_approval)
        if request is not None:
            return request
        await asyncio.sleep(0.1)
    raise AssertionError("the workflow never asked for approval")


async def test_approved_plan_runs_its_step_once_and_resolves(
    temporal_client: Client, task_queue: str, worker_and_acts: IncidentActivities
) -> None:
    handle = await start(temporal_client, task_queue, approval())
    request = await pending(handle)
    assert request.plan.target == "cartservice"  # the strongest anomaly ranks first
    assert request.dry_run, "the approval request carries the dry-run preview"
    assert worker_and_acts.executed == [], "nothing runs before approval"

    result = await handle.execute_update(
        IncidentWorkflow.decide,
        Decision(approve=True, plan_hash=request.plan_hash, identity="alice"),
    )
    assert result.accepted
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED
    assert len(worker_and_acts.executed) == 1
    assert [d.identity for d in report.decisions] == ["alice"]
    assert any(e.actor == "alice" and "approved plan" in e.what for e in report.audit)


@pytest.mark.parametrize(
    ("identity", "plan_hash", "error"),
    [
        ("mallory", None, "may not decide"),
        ("alice", "0000000000000000", "does not match the pending plan"),
    ],
)
async def test_decide_validator_refuses_and_nothing_runs(
    temporal_client: Client, task_queue: str, worker_and_acts: IncidentActivities,
    identity: str, plan_hash: str | None, error: str,
) -> None:
    handle = await start(temporal_client, task_queue, approval())
    request = await pending(handle)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            IncidentWorkflow.decide,
            Decision(approve=True, plan_hash=plan_hash or request.plan_hash, identity=identity),
        )
    assert error in str(refused.value.cause)
    assert await handle.query(IncidentWorkflow.status) is IncidentStatus.AWAITING_APPROVAL
    assert worker_and_acts.executed == []
    # A refused update leaves no trace in history: the audit shows no decision.
    assert not any(identity in entry.what for entry in await handle.query(IncidentWorkflow.audit))
    await handle.terminate("test done")


async def test_rejection_closes_without_running_anything(
    temporal_client: Client, task_queue: str, worker_and_acts: IncidentActivities
) -> None:
    handle = await start(temporal_client, task_queue, approval())
    request = await pending(handle)
    await handle.execute_update(
        IncidentWorkflow.decide,
        Decision(approve=False, plan_hash=request.plan_hash, identity="bob", reason="not now"),
    )
    report = await handle.result()
    assert report.status is IncidentStatus.REJECTED
    assert report.steps == []
    assert worker_and_acts.executed == []


async def test_two_person_rule_needs_two_distinct_approvers(
    temporal_client: Client, task_queue: str, worker_and_acts: IncidentActivities
) -> None:
    handle = await start(temporal_client, task_queue, approval(approvals_required=2))
    request = await pending(handle)
    first = await handle.execute_update(
        IncidentWorkflow.decide, Decision(approve=True, plan_hash=request.plan_hash,
                                          identity="alice"),
    )
    assert first.approvals_needed == 1
    with pytest.raises(WorkflowUpdateFailedError, match="Workflow update failed"):
        await handle.execute_update(
            IncidentWorkflow.decide, Decision(approve=True, plan_hash=request.plan_hash,
                                              identity="alice"),
        )
    assert (await pending(handle)).approved_by == ["alice"]
    assert worker_and_acts.executed == []
    await handle.execute_update(
        IncidentWorkflow.decide, Decision(approve=True, plan_hash=request.plan_hash,
                                          identity="bob"),
    )
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED
    assert len(worker_and_acts.executed) == 1


async def test_approval_after_expiry_is_refused(
    temporal_client: Client, task_queue: str, worker_and_acts: IncidentActivities
) -> None:
    handle = await start(temporal_client, task_queue, approval(approval_timeout_s=1.5))
    request = await pending(handle)
    report = await handle.result()
    assert report.status is IncidentStatus.REJECTED
    # The incident closed on expiry, so the server refuses the late update outright.
    with pytest.raises(RPCError, match="already completed"):
        await handle.execute_update(
            IncidentWorkflow.decide, Decision(approve=True, plan_hash=request.plan_hash,
                                              identity="alice"),
        )
    assert worker_and_acts.executed == []


async def test_timeout_escalates_when_policy_says_so(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """A 15-minute approval window, skipped through on the time-skipping server."""
    client = time_skipping_env.client
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    acts = IncidentActivities()
    async with build_worker(client, queue, acts.all()):
        handle = await start(
            client, queue, approval(approval_timeout_s=900, on_timeout=TimeoutAction.ESCALATE)
        )
        report = await handle.result()
    assert report.status is IncidentStatus.ESCALATED
    assert acts.executed == []


async def test_recorded_history_replays(
    temporal_client: Client, task_queue: str, worker_and_acts: IncidentActivities
) -> None:
    """The committed history must replay against today's code (no non-determinism); and a
    fresh history recorded now replays too."""
    handle = await start(temporal_client, task_queue, approval())
    request = await pending(handle)
    await handle.execute_update(
        IncidentWorkflow.decide, Decision(approve=True, plan_hash=request.plan_hash,
                                          identity="alice"),
    )
    await handle.result()
    fresh = await handle.fetch_history()
    replayer = Replayer(workflows=[IncidentWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(fresh)
    if os.environ.get("AIOPS_RECORD_HISTORIES") == "1":
        (HISTORIES / "incident-approved.json").write_text(fresh.to_json())

    recorded = sorted(HISTORIES.glob("incident-*.json"))
    assert recorded, f"no recorded histories in {HISTORIES}"
    from temporalio.client import WorkflowHistory

    for path in recorded:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        await replayer.replay_workflow(history)

