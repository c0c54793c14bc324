"""`aiops slack serve`: the Slack approvals app, in Socket Mode or as an HTTP endpoint."""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web
from temporalio.client import Client

from aiops.approvals.slack.handlers import ApprovalHandler
from aiops.approvals.slack.http_mode import PATH, InteractionEndpoint, RequestVerifier, slack_door
from aiops.approvals.slack.notifier import web_client
from aiops.approvals.slack.socket_mode import SocketModeApp
from aiops.config import ConfigError, Settings, load_settings
from aiops.domain.yamlsource import LoadError
from aiops.incidents import DecisionSigner, IncidentClient, KeyFileError
from aiops.integrations.temporal import TemporalUnavailableError, connect
from aiops.logs import get_logger
from aiops.telemetry.process import ProcessTelemetry

log = get_logger(__name__)


class SlackSetupError(Exception):
    """A setting the chosen mode needs is missing; the message names it."""


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=["socket", "http"], help="default: the slack.mode setting")
    p.add_argument("--host", default="127.0.0.1", help="HTTP mode: bind address")
    p.add_argument("--port", type=int, default=3000, help="HTTP mode: port")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        asyncio.run(serve(settings, mode=args.mode, host=args.host, port=args.port))
    except (ConfigError, SlackSetupError, LoadError, TemporalUnavailableError) as exc:
        print(f"aiops: {exc}")
        return 2
    return 0


async def serve(
    settings: Settings,
    *,
    mode: str | None = None,
    host: str = "127.0.0.1",
    port: int = 3000,
    stop: asyncio.Event | None = None,
) -> None:
    slack = settings.slack
    mode = mode or slack.mode
    if slack.bot_token is None:
        raise SlackSetupError(
            "set AIOPS_SLACK__BOT_TOKEN (xoxb-...); `aiops slack check` "
            "lists everything that is missing"
        )
    if mode == "socket" and slack.app_token is None:
        raise SlackSetupError("Socket Mode needs AIOPS_SLACK__APP_TOKEN (xapp-...)")
    if mode == "http" and slack.signing_secret is None:
        raise SlackSetupError("HTTP mode needs AIOPS_SLACK__SIGNING_SECRET")
    if settings.signing.slack_key is None:
        raise SlackSetupError(
            "set AIOPS_SIGNING__SLACK_KEY to the app's front-door key (`aiops key generate "
            "--file ...`) and list its public key under approvals.front_doors (channel: slack): "
            "without it no click in Slack can prove who decided"
        )
    try:
        signer = DecisionSigner.front_door(settings.signing.slack_key, "slack")
    except KeyFileError as exc:
        raise SlackSetupError(str(exc)) from exc
    telemetry = ProcessTelemetry.start(settings, "slack")
    try:
        temporal = await connect(settings.temporal)
        async with telemetry.beside(temporal):
            await _serve(settings, temporal, signer, mode, host, port, stop, telemetry)
    finally:
        telemetry.stop()


async def _serve(
    settings: Settings,
    temporal: Client,
    signer: DecisionSigner,
    mode: str,
    host: str,
    port: int,
    stop: asyncio.Event | None,
    telemetry: ProcessTelemetry,
) -> None:
    slack = settings.slack
    assert slack.bot_token is not None
    client = web_client(slack.bot_token.get_secret_value(), slack.api_url)
    incidents = IncidentClient(temporal, settings.temporal.task_queue)
    handler = ApprovalHandler(incidents, signer, client)
    stop = stop or _stop_on_signals()
    if mode == "socket":
        assert slack.app_token is not None
        app = SocketModeApp(handler, slack.app_token.get_secret_value(), client)
        await app.start()
        telemetry.serving.set()
        log.info("slack app connected", mode="socket")
        try:
            await stop.wait()
        finally:
            await app.close()
        return
    assert slack.signing_secret is not None
    endpoint = InteractionEndpoint(
        handler,
        RequestVerifier(slack.signing_secret.get_secret_value()),
        slack_door(host, tuple(slack.allowed_hosts)),
    )
    runner = web.AppRunner(endpoint.app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    telemetry.serving.set()
    log.info("slack app listening", mode="http", url=f"http://{host}:{port}{PATH}")
    try:
        await stop.wait()
    finally:
        await endpoint.drain()
        await runner.cleanup()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
