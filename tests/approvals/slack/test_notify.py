"""The notify activities post once and update after: retries never post twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from aiops.activities.notify import NotifyActivities, NotifyApprovalInput, NotifyProgressInput
from aiops.approvals.slack.blocks import ACTIONS_BLOCK
from aiops.approvals.slack.notifier import MessageStore, SlackNotifier, notifier_from_settings
from aiops.config import Settings
from tests.approvals.slack.stub import CHANNEL, SlackStub
from tests.approvals.slack.test_blocks import REPORT, request


async def test_approval_message_is_posted_once_and_updated_on_retry(
    slack: SlackStub,
    notify: NotifyActivities,
) -> None:
    inp = NotifyApprovalInput(request=request(), report=REPORT)
    env = ActivityEnvironment()
    first = await env.run(notify.notify_approval_request, inp)
    again = await env.run(notify.notify_approval_request, inp)
    assert first.delivered and first.detail == "posted"
    assert (again.channel, again.ts, again.detail) == (first.channel, first.ts, "updated")
    assert len(slack.of("chat.postMessage")) == 1
    assert len(slack.of("chat.update")) == 1
    msg = slack.messages[first.ts or ""]
    assert msg.channel == CHANNEL
    assert "cartservice leaks memory" in repr(msg.blocks)
    # The activity environment's workflow id names the link to the Temporal UI.
    assert "http://127.0.0.1:8233/namespaces/default/workflows/" in repr(msg.blocks)


async def test_progress_goes_to_the_thread_once_per_key_and_closing_removes_buttons(
    slack: SlackStub,
    notify: NotifyActivities,
) -> None:
    req = request()
    posted = await notify.notify_approval_request(NotifyApprovalInput(request=req, report=REPORT))
    step = NotifyProgressInput(
        incident_id=req.incident_id,
        plan_hash=req.plan_hash,
        key="step-1",
        text="step 1 k8s.rollout_restart: restarted",
    )
    assert (await notify.notify_progress(step)).delivered
    assert not (await notify.notify_progress(step)).delivered  # a retry: already posted
    thread = slack.thread(posted.ts or "")
    assert [m.text for m in thread] == ["step 1 k8s.rollout_restart: restarted"]

    closing = NotifyProgressInput(
        incident_id=req.incident_id,
        plan_hash=req.plan_hash,
        key="closed",
        text="incident closed: resolved",
        outcome="resolved",
        approved_by=["alice", "bob"],
    )
    assert (await notify.notify_progress(closing)).delivered
    assert (await notify.notify_progress(closing)).detail == "already done"
    msg = slack.messages[posted.ts or ""]
    assert not any(b.get("block_id") == ACTIONS_BLOCK for b in msg.blocks)
    assert "*resolved* - approved by alice, bob" in repr(msg.blocks)
    assert len(slack.thread(posted.ts or "")) == 2
    # A late retry of the request must not bring the buttons back.
    await notify.notify_approval_request(NotifyApprovalInput(request=req, report=REPORT))
    assert not any(b.get("block_id") == ACTIONS_BLOCK for b in msg.blocks)


async def test_progress_before_any_request_opens_one_thread(
    slack: SlackStub,
    notify: NotifyActivities,
) -> None:
    req = request()
    for key in ("a", "b"):
        await notify.notify_progress(
            NotifyProgressInput(
                incident_id=req.incident_id, plan_hash=req.plan_hash, key=key, text=f"line {key}"
            )
        )
    roots = [m for m in slack.messages.values() if m.thread_ts is None]
    assert len(roots) == 1
    assert [m.text for m in slack.thread(roots[0].ts)] == ["line a", "line b"]


async def test_state_survives_a_worker_restart(
    slack: SlackStub,
    web: AsyncWebClient,
    tmp_path: Path,
) -> None:
    req = request()
    inp = NotifyApprovalInput(request=req, report=REPORT)
    for _ in range(2):  # a new notifier each time, as after a restart
        acts = NotifyActivities(SlackNotifier(web, CHANNEL, MessageStore(tmp_path / "s")))
        await acts.notify_approval_request(inp)
    assert len(slack.of("chat.postMessage")) == 1


async def test_a_channel_that_does_not_exist_fails_without_retries(
    slack: SlackStub,
    web: AsyncWebClient,
    tmp_path: Path,
) -> None:
    acts = NotifyActivities(SlackNotifier(web, "C0MISSING", MessageStore(tmp_path)))
    with pytest.raises(ApplicationError) as err:
        await acts.notify_approval_request(NotifyApprovalInput(request=request()))
    assert err.value.non_retryable
    assert "channel_not_found" in str(err.value) and "aiops slack check" in str(err.value)


async def test_without_slack_settings_nothing_is_sent(tmp_path: Path) -> None:
    assert notifier_from_settings(Settings(state_dir=tmp_path)) is None
    acts = NotifyActivities(None)
    result = await acts.notify_approval_request(NotifyApprovalInput(request=request()))
    assert not result.delivered and "not configured" in result.detail
