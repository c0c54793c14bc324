"""Slack down or rate-limited while an approval request waits (#14 item 14): the request does
not expire silently. The audit trail, the log and the MCP view say it was not posted and how to
decide through the other channels, and a decision through them still runs the plan."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastmcp import Client as McpClient
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.notify import NotifyActivities, NotifyApprovalInput
from aiops.config import Settings, TemporalSettings
from aiops.domain import IncidentStatus
from aiops.mcp.server import create_server
from tests.approvals.slack.conftest import slack_rules
from tests.approvals.slack.stub import SlackStub
from tests.approvals.slack.test_blocks import REPORT, request
from tests.incident_fixtures import approve, pending, start
from tests.servers import MetricsTarget
from workflows import IncidentWorkflow


async def _fallback_note(handle: Any, timeout_s: float = 60) -> str:
    for _ in range(int(timeout_s * 4)):
        for entry in await handle.query(IncidentWorkflow.audit):
            if entry.what.startswith("notification failed"):
                return str(entry.what)
        await asyncio.sleep(0.25)
    raise AssertionError("the audit trail never said the request was not posted")


async def test_a_rate_limit_is_waited_out_once_then_reported_with_the_other_channels(
    slack: SlackStub, notify: NotifyActivities
) -> None:
    slack.outage(429, {"Retry-After": "1"})
    with pytest.raises(ApplicationError) as err:
        await notify.notify_approval_request(NotifyApprovalInput(request=request(), report=REPORT))
    assert "Slack is rate-limiting aiops (HTTP 429)" in err.value.message
    assert "aiops approve incident-abc --plan-hash" in err.value.message
    assert not err.value.non_retryable  # Temporal tries again: a rate limit passes
    assert len(slack.of("chat.postMessage")) == 2  # slack_sdk waited out Retry-After once


async def test_the_request_waits_on_the_other_channels_and_says_so(
    temporal_client: Client,
    task_queue: str,
    worker: None,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
    slack: SlackStub,
) -> None:
    words = "Slack is failing (HTTP 503)"
    slack.outage(503)
    handle = await start(temporal_client, task_queue, slack_rules(rules))
    request = await pending(handle)
    note = await _fallback_note(handle)
    assert words in note
    assert f"aiops approve {request.incident_id} --plan-hash {request.plan_hash}" in note
    assert "approve_remediation" in note and request.expires_at.isoformat() in note
    assert await handle.query(IncidentWorkflow.status) is IncidentStatus.AWAITING_APPROVAL
    assert not slack.messages, "nothing reached Slack"

    address = temporal_client.service_client.config.target_host
    settings = Settings(temporal=TemporalSettings(address=address))
    async with McpClient[Any](create_server(settings)) as mcp:
        view = (await mcp.call_tool("get_incident", {"incident_id": handle.id})).structured_content
    assert view is not None and view["awaiting_approval"]["plan_hash"] == request.plan_hash
    assert any(words in n for n in view["notes"]), view["notes"]

    slack.outage(0)
    await approve(handle, "alice", request)  # the CLI's path: the `decide` update
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED
