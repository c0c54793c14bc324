"""The worker's telemetry interceptor on a real Temporal dev server: an incident's activity logs
with its incident and workflow ids and is timed; a `decide` accepted after an approval request is
timed from the request, once, and not again when the workflow is replayed."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Replayer, Worker

from aiops.logs import configure_logging, get_logger
from aiops.telemetry.interceptor import TelemetryInterceptor


@dataclass
class Request:
    requested_at: datetime


@dataclass
class NotifyInput:
    request: Request


@dataclass
class DecideInput:
    approve: bool


@dataclass
class DecideAnswer:
    accepted: bool


@activity.defn(name="investigate_incident")
async def investigate(note: str) -> str:
    get_logger("tests.telemetry").info("investigating", note=note)
    return "report"


@activity.defn(name="notify_approval_request")
async def notify(inp: NotifyInput) -> None:
    return None


@workflow.defn(name="TelemetryProbe", sandboxed=False)
class Probe:
    def __init__(self) -> None:
        self.decided = False

    @workflow.run
    async def run(self) -> str:
        report: str = await workflow.execute_activity(
            investigate, "n1", start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.execute_activity(
            notify,
            NotifyInput(Request(workflow.now())),
            start_to_close_timeout=timedelta(seconds=30),
        )
        await workflow.wait_condition(lambda: self.decided)
        return report

    @workflow.update(name="decide")
    async def decide(self, inp: DecideInput) -> DecideAnswer:
        self.decided = True
        return DecideAnswer(accepted=True)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_activity_logs_carry_the_incident_and_decisions_are_timed(
    temporal_client: Client, task_queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "json")
    investigations = sample("aiops_investigation_seconds_count", outcome="succeeded")
    approvals = sample("aiops_approval_latency_seconds_count", decision="approve")
    waited = sample("aiops_approval_latency_seconds_sum", decision="approve")
    incident = f"incident-{uuid.uuid4().hex[:12]}"
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[Probe],
        activities=[investigate, notify],
        interceptors=[TelemetryInterceptor()],
    ):
        handle = await temporal_client.start_workflow(Probe.run, id=incident, task_queue=task_queue)
        while not await _asked(handle.id, temporal_client):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        await handle.execute_update(Probe.decide, DecideInput(approve=True))
        assert await handle.result() == "report"
    history = await handle.fetch_history()

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    mine = [line for line in lines if line.get("event") == "investigating"]
    assert mine, lines
    assert mine[0]["incident_id"] == incident
    assert mine[0]["workflow_id"] == incident
    assert mine[0]["activity"] == "investigate_incident"
    assert sample("aiops_investigation_seconds_count", outcome="succeeded") == investigations + 1
    assert sample("aiops_approval_latency_seconds_count", decision="approve") == approvals + 1
    assert sample("aiops_approval_latency_seconds_sum", decision="approve") - waited >= 1.0

    # A worker rebuilding the workflow from its history counts nothing again.
    await Replayer(workflows=[Probe], interceptors=[TelemetryInterceptor()]).replay_workflow(
        history
    )
    assert sample("aiops_approval_latency_seconds_count", decision="approve") == approvals + 1


async def _asked(workflow_id: str, client: Client) -> bool:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return any(
        e.activity_task_scheduled_event_attributes.activity_type.name == "notify_approval_request"
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    )
