"""`aiops slack manifest`: the Slack app manifest to paste into "Create an app > From a manifest",
with exactly the scopes aiops uses (and nothing more)."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from aiops.approvals.slack.http_mode import PATH

BOT_SCOPES = [
    "chat:write",  # approval messages, thread progress, ephemeral refusals
    "channels:read",  # `aiops slack check`: conversations.info on a public channel
    "groups:read",  # ... and on a private one
    "files:write",  # the anomaly plot in the thread
]


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="aiops", help="app name shown in Slack")
    p.add_argument(
        "--mode",
        choices=["socket", "http"],
        default="socket",
        help="socket: no public URL needed (default); http: Slack calls --url",
    )
    p.add_argument("--url", help=f"HTTP mode: public base URL; Slack posts clicks to <url>{PATH}")


def manifest(name: str, mode: str, url: str | None = None) -> dict[str, Any]:
    interactivity: dict[str, Any] = {"is_enabled": True}
    if mode == "http":
        if not url:
            raise ValueError("HTTP mode needs --url, the public base URL Slack can reach")
        interactivity["request_url"] = url.rstrip("/") + PATH
    return {
        "display_information": {
            "name": name,
            "description": "Approve or reject aiops remediations",
        },
        "features": {"bot_user": {"display_name": name, "always_online": True}},
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": mode == "socket",
            "token_rotation_enabled": False,
        },
    }


def run(args: argparse.Namespace) -> int:
    try:
        doc = manifest(args.name, args.mode, args.url)
    except ValueError as exc:
        print(f"aiops: {exc}")
        return 2
    print(yaml.safe_dump(doc, sort_keys=False), end="")
    if args.mode == "socket":
        print(
            "# then: Basic Information > App-Level Tokens > generate one with "
            "connections:write (AIOPS_SLACK__APP_TOKEN)"
        )
    print(
        "# install the app, set AIOPS_SLACK__BOT_TOKEN (xoxb-...) and AIOPS_SLACK__CHANNEL, "
        "invite the bot to the channel, then run `aiops slack check`"
    )
    return 0
