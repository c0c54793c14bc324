"""`aiops slack check`: is the bot token valid, can the bot post in the channel, and is
everything the chosen mode needs set? Says plainly what is missing and how to fix it."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from aiops.approvals.slack.notifier import web_client
from aiops.config import ConfigError, SlackSettings, load_settings

_SCOPE_HINTS = {
    "conversations.info": "channels:read (groups:read for a private channel)",
    "auth.test": "(none)",
    "apps.connections.open": "connections:write on the app-level token",
}


@dataclass
class CheckReport:
    lines: list[str] = field(default_factory=list)
    problems: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"ok       {text}")

    def missing(self, text: str) -> None:
        self.problems += 1
        self.lines.append(f"MISSING  {text}")

    def failed(self, text: str) -> None:
        self.problems += 1
        self.lines.append(f"FAILED   {text}")


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", help="channel id to check (default: the slack.channel setting)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"aiops: {exc}")
        return 2
    report = asyncio.run(check(settings.slack, channel=args.channel))
    print("\n".join(report.lines))
    if report.problems:
        print(f"{report.problems} problem(s); Slack approvals will not work until they are fixed")
        return 1
    print("Slack is ready for approvals")
    return 0


async def check(slack: SlackSettings, channel: str | None = None) -> CheckReport:
    report = CheckReport()
    channel = channel or slack.channel
    token = slack.bot_token.get_secret_value() if slack.bot_token else ""
    if not token:
        report.missing(
            "bot token: set AIOPS_SLACK__BOT_TOKEN to the app's Bot User OAuth Token (xoxb-...)"
        )
    elif not token.startswith("xoxb-"):
        report.failed(
            "bot token does not start with xoxb-: use the Bot User OAuth Token, not a "
            "user or app-level token"
        )
    if not channel:
        report.missing(
            "channel: set AIOPS_SLACK__CHANNEL to the channel id (C..., from the "
            "channel's details), where approval requests are posted"
        )
    _mode_settings(slack, report)
    if not token:
        return report
    client = web_client(token, slack.api_url)
    bot_user = await _auth(client, report)
    if bot_user is not None and channel:
        await _channel(client, channel, report)
    if slack.mode == "socket" and slack.app_token is not None:
        await _app_token(slack, report)
    return report


def _mode_settings(slack: SlackSettings, report: CheckReport) -> None:
    if slack.mode == "socket":
        app = slack.app_token.get_secret_value() if slack.app_token else ""
        if not app:
            report.missing(
                "app-level token for Socket Mode: set AIOPS_SLACK__APP_TOKEN "
                "(xapp-..., scope connections:write), or set AIOPS_SLACK__MODE=http"
            )
        elif not app.startswith("xapp-"):
            report.failed(
                "app-level token does not start with xapp-: create one under Basic "
                "Information > App-Level Tokens with connections:write"
            )
    else:
        if slack.signing_secret is None or not slack.signing_secret.get_secret_value():
            report.missing(
                "signing secret for HTTP mode: set AIOPS_SLACK__SIGNING_SECRET (Basic "
                "Information > Signing Secret); without it no click is accepted"
            )
        else:
            report.ok("signing secret set (HTTP mode)")


async def _auth(client: AsyncWebClient, report: CheckReport) -> str | None:
    try:
        resp = await client.auth_test()
    except SlackApiError as exc:
        report.failed(
            f"bot token rejected by Slack ({_error(exc)}); reinstall the app and copy "
            "the Bot User OAuth Token again"
        )
        return None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        report.failed(f"cannot reach Slack at {client.base_url} ({exc or type(exc).__name__})")
        return None
    user = str(resp.get("user") or resp.get("user_id") or "?")
    report.ok(f"bot token valid: bot @{user} in team {resp.get('team', '?')}")
    return user


async def _channel(client: AsyncWebClient, channel: str, report: CheckReport) -> None:
    try:
        resp = await client.conversations_info(channel=channel)
    except SlackApiError as exc:
        error = _error(exc)
        if error == "channel_not_found":
            report.failed(
                f"channel {channel} not found, or private and the bot is not in it: "
                "use the channel id (C...) and /invite the bot"
            )
        elif error == "missing_scope":
            report.failed(
                f"cannot read channel {channel}: add the bot scope "
                f"{_SCOPE_HINTS['conversations.info']} and reinstall the app"
            )
        else:
            report.failed(f"channel {channel}: Slack says {error}")
        return
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        report.failed(f"cannot reach Slack at {client.base_url} ({exc or type(exc).__name__})")
        return
    info = resp.get("channel") or {}
    name = info.get("name", channel)
    if info.get("is_archived"):
        report.failed(f"channel #{name} is archived; choose another channel")
    elif not info.get("is_member", False):
        report.failed(f"the bot is not a member of #{name}: type /invite @<bot> in the channel")
    else:
        report.ok(f"channel #{name} ({channel}) found and the bot is a member")


async def _app_token(slack: SlackSettings, report: CheckReport) -> None:
    assert slack.app_token is not None
    client = web_client(slack.app_token.get_secret_value(), slack.api_url)
    try:
        await client.apps_connections_open(app_token=slack.app_token.get_secret_value())
    except SlackApiError as exc:
        report.failed(
            f"app-level token rejected ({_error(exc)}): it needs "
            f"{_SCOPE_HINTS['apps.connections.open']}, and Socket Mode must be "
            "enabled in the app settings"
        )
        return
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        report.failed(f"cannot reach Slack at {client.base_url} ({exc or type(exc).__name__})")
        return
    report.ok("app-level token valid; Socket Mode can connect")


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or exc)
