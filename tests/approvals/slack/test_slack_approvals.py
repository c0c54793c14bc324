"""Clicks in Slack reach the real incident workflow, over Socket Mode and over signed HTTP;
every click that must be refused is refused with an explanation and changes nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from aiohttp import web as aioweb
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client, WorkflowHandle

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.notify import NotifyActivities
from aiops.approvals.slack.blocks import ACTIONS_BLOCK, APPROVE, REJECT, ButtonValue
from aiops.approvals.slack.handlers import ApprovalHandler
from aiops.approvals.slack.http_mode import PATH, InteractionEndpoint, RequestVerifier, sign
from aiops.approvals.slack.socket_mode import SocketModeApp
from aiops.domain import IncidentReport, IncidentStatus
from aiops.incidents import IncidentClient
from tests.approvals.slack.conftest import ALICE, BOB, CAROL, SLACK_APP, STRANGER, slack_rules
from tests.approvals.slack.stub import APP_TOKEN, BOT_TOKEN, Message, SlackStub, click_payload
from tests.incident_fixtures import pending, reject, start
from tests.keys import signer
from tests.servers import MetricsTarget
from workflows import IncidentWorkflow

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

Handle = WorkflowHandle[IncidentWorkflow, IncidentReport]


@pytest.fixture
async def socket_app(
    slack: SlackStub,
    web: AsyncWebClient,
    temporal_client: Client,
) -> AsyncIterator[SocketModeApp]:
    handler = ApprovalHandler(IncidentClient(temporal_client), signer(SLACK_APP, "slack"), web)
    # Its own client, as in production: Socket Mode asks apps.connections.open with the app
    # token for the websocket URL, which the stub answers with its own ws:// address.
    app = SocketModeApp(handler, APP_TOKEN, AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url))
    await app.start()
    await slack.connected()
    try:
        yield app
    finally:
        await app.close()


async def ask(slack: SlackStub, handle: Handle) -> Message:
    """The approval message the workflow's notify activity posted once the plan awaits
    approval."""
    request = await pending(handle)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        posted = [
            m
            for m in slack.messages.values()
            if m.thread_ts is None and request.incident_id in m.text and m.blocks
        ]
        if posted:
            assert len(posted) == 1, posted
            return posted[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no approval message for {request.incident_id} in Slack")


def ephemerals(slack: SlackStub, user: str) -> list[str]:
    return [
        str(c.params["text"])
        for c in slack.of("chat.postEphemeral")
        if c.params.get("user") == user
    ]


def has_buttons(msg: Message) -> bool:
    return any(b.get("block_id") == ACTIONS_BLOCK for b in msg.blocks)


async def click(
    slack: SlackStub,
    app: SocketModeApp,
    payload: dict[str, object],
    envelope: str | None = None,
    retry: int = 0,
) -> None:
    await slack.send_envelope(envelope or uuid.uuid4().hex, payload, retry_attempt=retry)
    await app.drain()


async def test_two_people_approve_in_slack_and_the_plan_runs(
    temporal_client: Client,
    task_queue: str,
    worker: None,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
    slack: SlackStub,
    notify: NotifyActivities,
    socket_app: SocketModeApp,
) -> None:
    handle = await start(temporal_client, task_queue, slack_rules(rules, approvals=2))
    msg = await ask(slack, handle)
    assert "cartservice leaks memory" in repr(msg.blocks) and has_buttons(msg)

    first = click_payload(msg, ALICE, APPROVE, action_ts="1700000000.000001")
    await click(slack, socket_app, first, envelope="env-alice")
    assert (await pending(handle)).approved_by == ["alice"]
    assert "Approved by alice (1 of 2); waiting for one more of: bob" in repr(msg.blocks)
    assert has_buttons(msg)
    assert any(
        "alice" in m.text and "1 more approval(s) needed" in m.text for m in slack.thread(msg.ts)
    )

    # Slack re-delivers the envelope (late ack), and alice clicks again: one approval stays.
    await click(slack, socket_app, first, envelope="env-alice", retry=1)
    await click(
        slack, socket_app, click_payload(msg, ALICE, APPROVE, action_ts="1700000000.000002")
    )
    assert (await pending(handle)).approved_by == ["alice"]
    assert slack.acks.count("env-alice") == 2
    said = ephemerals(slack, ALICE)
    assert len(said) == 1 and "already approved" in said[0]
    assert await handle.query(IncidentWorkflow.actions) == []

    # Slack refreshes Socket Mode connections now and then; the app reconnects and carries on.
    await slack.ask_to_reconnect()
    assert len(slack.of("apps.connections.open")) == 2
    await click(slack, socket_app, click_payload(msg, BOB, APPROVE))
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED
    assert [(d.identity, d.channel) for d in report.decisions] == [
        ("alice", "slack"),
        ("bob", "slack"),
    ]
    assert not has_buttons(msg)
    assert "approved by alice, bob" in repr(msg.blocks)


async def test_clicks_that_must_be_refused_change_nothing(
    temporal_client: Client,
    task_queue: str,
    worker: None,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
    slack: SlackStub,
    notify: NotifyActivities,
    socket_app: SocketModeApp,
) -> None:
    handle = await start(temporal_client, task_queue, slack_rules(rules))
    msg = await ask(slack, handle)
    request = await pending(handle)
    blocks_before = repr(msg.blocks)

    await click(slack, socket_app, click_payload(msg, STRANGER, APPROVE))
    await click(slack, socket_app, click_payload(msg, CAROL, APPROVE))
    other_plan = ButtonValue(request.incident_id, "deadbeefdeadbeef", request.expires_at)
    await click(slack, socket_app, click_payload(msg, ALICE, APPROVE, value=other_plan.encode()))
    await click(slack, socket_app, click_payload(msg, ALICE, APPROVE, value="forged"))

    assert f"slack user '{STRANGER}' is not mapped to a person" in ephemerals(slack, STRANGER)[0]
    assert "carol may not decide" in ephemerals(slack, CAROL)[0]
    assert "the policy allows: alice, bob" in ephemerals(slack, CAROL)[0]
    alice = ephemerals(slack, ALICE)
    assert "plan hash deadbeefdeadbeef" in alice[0] and request.plan_hash in alice[0]
    assert "not a valid aiops approval" in alice[1]
    assert (await pending(handle)).approved_by == []
    assert await handle.query(IncidentWorkflow.actions) == []
    assert repr(msg.blocks) == blocks_before and slack.thread(msg.ts) == []

    await click(slack, socket_app, click_payload(msg, BOB, REJECT))
    report = await handle.result()
    assert report.status is IncidentStatus.REJECTED
    assert [(d.identity, d.approve, d.reason) for d in report.decisions] == [
        ("bob", False, "rejected in Slack")
    ]
    assert report.steps == []
    assert not has_buttons(msg) and "*rejected*: by bob" in repr(msg.blocks)


async def test_an_expired_request_cannot_be_approved(
    temporal_client: Client,
    task_queue: str,
    worker: None,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
    slack: SlackStub,
    notify: NotifyActivities,
    socket_app: SocketModeApp,
) -> None:
    handle = await start(temporal_client, task_queue, slack_rules(rules, timeout="2s"))
    msg = await ask(slack, handle)
    late = click_payload(msg, ALICE, APPROVE)  # alice's screen still shows the buttons
    report = await handle.result()  # the request times out; the policy says reject
    assert report.status is IncidentStatus.REJECTED
    assert not has_buttons(msg), "the workflow closed the message on expiry"
    assert "expired" in repr(msg.blocks)
    updates = len(slack.of("chat.update"))
    await click(slack, socket_app, late)
    assert "already closed (rejected)" in ephemerals(slack, ALICE)[0]
    assert len(slack.of("chat.update")) == updates  # the workflow's notify closes the message
    assert (await handle.result()).decisions == []


async def test_a_closed_incident_cannot_be_decided(
    temporal_client: Client,
    task_queue: str,
    worker: None,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
    slack: SlackStub,
    notify: NotifyActivities,
    socket_app: SocketModeApp,
) -> None:
    # The button's own expiry is still ahead, but the incident was rejected from the CLI.
    handle = await start(temporal_client, task_queue, slack_rules(rules))
    msg = await ask(slack, handle)
    late = click_payload(msg, ALICE, APPROVE)
    request = await pending(handle)
    await reject(handle, "bob", request)
    await handle.result()
    await click(slack, socket_app, late)
    assert "already closed (rejected); nothing to decide" in ephemerals(slack, ALICE)[0]
    assert [d.identity for d in (await handle.result()).decisions] == ["bob"]


# --- HTTP mode --------------------------------------------------------------------------------


@pytest.fixture
async def endpoint(
    web: AsyncWebClient,
    temporal_client: Client,
) -> AsyncIterator[tuple[str, InteractionEndpoint]]:
    handler = ApprovalHandler(IncidentClient(temporal_client), signer(SLACK_APP, "slack"), web)
    ep = InteractionEndpoint(handler, RequestVerifier(SECRET))
    runner = aioweb.AppRunner(ep.app)
    await runner.setup()
    site = aioweb.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}{PATH}", ep
    finally:
        await ep.drain()
        await runner.cleanup()


def signed(
    payload: dict[str, object], *, secret: str = SECRET, age_s: float = 0
) -> tuple[bytes, dict[str, str]]:
    import json
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time() - age_s))
    return body, {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(secret, ts, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def test_signed_http_clicks_decide_and_bad_requests_do_nothing(
    temporal_client: Client,
    task_queue: str,
    worker: None,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
    slack: SlackStub,
    notify: NotifyActivities,
    endpoint: tuple[str, InteractionEndpoint],
) -> None:
    url, ep = endpoint
    handle = await start(temporal_client, task_queue, slack_rules(rules, approvals=2))
    msg = await ask(slack, handle)
    async with httpx.AsyncClient() as http:
        alice_click = click_payload(msg, ALICE, APPROVE)
        alice = signed(alice_click)
        assert (await http.post(url, content=alice[0], headers=alice[1])).status_code == 200
        await ep.drain()
        assert (await pending(handle)).approved_by == ["alice"]
        calls = len(slack.calls)
        # Slack's own retry of the same click comes freshly signed: accepted, handled once.
        retry = signed(alice_click, age_s=-1)
        assert (await http.post(url, content=retry[0], headers=retry[1])).status_code == 200
        await ep.drain()
        assert len(slack.calls) == calls

        bob = click_payload(msg, BOB, APPROVE)
        refused = {
            "forged": signed(bob, secret="not-the-signing-secret"),
            "stale": signed(bob, age_s=301),
            "replayed": alice,
        }
        for name, (body, headers) in refused.items():
            resp = await http.post(url, content=body, headers=headers)
            assert resp.status_code == 401, name
            await ep.drain()
        assert (
            "signature does not match"
            in (
                await http.post(url, content=refused["forged"][0], headers=refused["forged"][1])
            ).json()["error"]
        )
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        unsigned = await http.post(url, content=signed(bob)[0], headers=form)
        assert unsigned.status_code == 401
        # The front-door rule holds before the signature is even read.
        body, headers = signed(bob)
        plain = await http.post(
            url, content=body, headers={**headers, "Content-Type": "text/plain"}
        )
        assert plain.status_code == 415
        rebound = await http.post(
            url, content=body, headers={**headers, "Host": "attacker.example"}
        )
        assert rebound.status_code == 421
        assert len(slack.calls) == calls  # nothing was handled: no Slack call, no decision
        assert (await pending(handle)).approved_by == ["alice"]
        assert await handle.query(IncidentWorkflow.actions) == []

        fresh = signed(bob)
        assert (await http.post(url, content=fresh[0], headers=fresh[1])).status_code == 200
        await ep.drain()
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED
    assert [d.identity for d in report.decisions] == ["alice", "bob"]


def test_verifier_window_is_five_minutes() -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC).timestamp()
    verifier = RequestVerifier(SECRET, clock=lambda: now)
    body = b"payload=%7B%7D"
    for age, ok in ((0, True), (299, True), (-299, True), (301, False), (-301, False)):
        ts = str(int(now - age))
        try:
            verifier.verify(body, ts, sign(SECRET, ts, body))
            accepted = True
        except Exception:
            accepted = False
        assert accepted is ok, age
