"""`aiops slack check` against the loopback Slack: what it says when things are right or not."""

from __future__ import annotations

import argparse

import pytest

from aiops.approvals.slack import check
from tests.approvals.slack.stub import APP_TOKEN, BOT_TOKEN, CHANNEL, SlackStub


def run_check(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    *argv: str,
) -> tuple[int, str]:
    for key in ("BOT_TOKEN", "APP_TOKEN", "SIGNING_SECRET", "CHANNEL", "MODE", "API_URL"):
        monkeypatch.delenv(f"AIOPS_SLACK__{key}", raising=False)
    monkeypatch.delenv("AIOPS_CONFIG", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(f"AIOPS_SLACK__{key}", value)
    parser = argparse.ArgumentParser()
    check.configure_parser(parser)
    code = check.run(parser.parse_args(list(argv)))
    return code, capsys.readouterr().out


async def test_everything_in_place(
    slack: SlackStub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await _in_thread(
        run_check,
        monkeypatch,
        capsys,
        {
            "BOT_TOKEN": BOT_TOKEN,
            "APP_TOKEN": APP_TOKEN,
            "CHANNEL": CHANNEL,
            "API_URL": slack.api_url,
        },
    )
    assert code == 0, out
    assert "bot token valid: bot @aiops in team Lab" in out
    assert f"channel #approvals ({CHANNEL}) found" in out
    assert "Socket Mode can connect" in out
    assert [c.method for c in slack.calls] == [
        "auth.test",
        "conversations.info",
        "apps.connections.open",
    ]


async def test_nothing_configured_lists_every_missing_setting(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = await _in_thread(run_check, monkeypatch, capsys, {})
    assert code == 1
    assert "MISSING  bot token: set AIOPS_SLACK__BOT_TOKEN" in out
    assert "MISSING  channel: set AIOPS_SLACK__CHANNEL" in out
    assert "MISSING  app-level token for Socket Mode: set AIOPS_SLACK__APP_TOKEN" in out
    assert "3 problem(s)" in out


async def test_http_mode_needs_the_signing_secret(
    slack: SlackStub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = await _in_thread(
        run_check,
        monkeypatch,
        capsys,
        {"BOT_TOKEN": BOT_TOKEN, "CHANNEL": CHANNEL, "MODE": "http", "API_URL": slack.api_url},
    )
    assert code == 1
    assert "MISSING  signing secret for HTTP mode: set AIOPS_SLACK__SIGNING_SECRET" in out
    assert "app-level token" not in out


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"BOT_TOKEN": "xoxb-revoked"}, "bot token rejected by Slack (invalid_auth)"),
        ({"CHANNEL": "C0MISSING"}, "channel C0MISSING not found"),
        ({"CHANNEL": "C0NOTMEMBER"}, "the bot is not a member of #elsewhere: type /invite"),
        ({"APP_TOKEN": "xapp-wrong"}, "app-level token rejected (invalid_auth)"),
        ({"BOT_TOKEN": "xoxp-user-token"}, "bot token does not start with xoxb-"),
    ],
)
async def test_each_problem_is_named(
    slack: SlackStub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    expected: str,
) -> None:
    base = {
        "BOT_TOKEN": BOT_TOKEN,
        "APP_TOKEN": APP_TOKEN,
        "CHANNEL": CHANNEL,
        "API_URL": slack.api_url,
    }
    code, out = await _in_thread(run_check, monkeypatch, capsys, {**base, **env})
    assert code == 1
    assert f"FAILED   {expected}" in out, out


async def test_unreachable_slack_is_said_plainly(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.servers import free_port

    code, out = await _in_thread(
        run_check,
        monkeypatch,
        capsys,
        {
            "BOT_TOKEN": BOT_TOKEN,
            "APP_TOKEN": APP_TOKEN,
            "CHANNEL": CHANNEL,
            "API_URL": f"http://127.0.0.1:{free_port()}/api/",
        },
    )
    assert code == 1
    assert "FAILED   cannot reach Slack at http://127.0.0.1:" in out


async def _in_thread(fn, *args):  # type: ignore[no-untyped-def]
    """`run` owns its event loop (asyncio.run), so call it off the test's loop."""
    import asyncio

    return await asyncio.to_thread(fn, *args)
