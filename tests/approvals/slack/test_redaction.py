"""Slack is an exit like any other: what it is sent passes the redactor (#14 item 8)."""

from __future__ import annotations

from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from aiops.approvals.slack.notifier import MessageStore, SlackNotifier
from tests.approvals.slack.stub import CHANNEL, SlackStub
from tests.approvals.slack.test_blocks import request
from tests.test_redaction_exits import LINE, SECRET, report_quoting_a_log_line


async def test_slack_messages_and_threads_carry_no_secret(
    slack: SlackStub, web: AsyncWebClient, tmp_path: Path
) -> None:
    notifier = SlackNotifier(web, CHANNEL, MessageStore(tmp_path))
    req = request(diff=f"env DB_PASSWORD: {SECRET}")
    ref = await notifier.request_approval(req, report_quoting_a_log_line())
    await notifier.progress("incident-abc", req.plan_hash, "step-1", f"step failed: {LINE}")
    await notifier.close("incident-abc", req.plan_hash, "failed", [], detail=LINE)
    sent = repr(slack.calls)
    assert SECRET not in sent
    assert "[REDACTED]" in repr(slack.messages[ref.ts].blocks)
