"""The `aiops` command.

Every failure a person can fix ends in one line on stderr naming what failed and what to do, and a
non-zero exit: 2 for usage and settings errors, 1 for everything else. No tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import entry_points
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

from aiops.config import (
    CONFIG_ENV,
    ConfigError,
    Settings,
    load_settings,
    masked_settings,
)
from aiops.logs import configure_logging

if TYPE_CHECKING:
    from temporalio.client import Client

Handler = Callable[[argparse.Namespace, Settings], int]


class UserError(Exception):
    """A failure the user can fix; printed as one line."""


def _cmd_version(args: argparse.Namespace, settings: Settings) -> int:
    print(f"aiops {package_version('aiops-daemon')}")
    return 0


def _cmd_config_show(args: argparse.Namespace, settings: Settings) -> int:
    data = masked_settings(settings)
    data["profiles"]["live"] = _live_profiles(settings)
    print(json.dumps(data, indent=2, sort_keys=True))
    return 0


def _live_profiles(settings: Settings) -> dict[str, object]:
    """What the metric profiles turn on against the configured Prometheus (or why not known)."""
    from aiops.integrations.discovery import ProfileDiscovery
    from aiops.integrations.prometheus import Prometheus
    from aiops.profiles.report import summary

    prometheus = Prometheus(settings.prometheus.model_copy(update={"timeout_s": 3.0}))
    try:
        discovery = ProfileDiscovery(settings.profiles, prometheus)
    except ConfigError as exc:
        return {"error": str(exc)}
    live = discovery.current()
    if discovery.last_error:
        return {"error": discovery.last_error}
    return summary(live)


def _cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.doctor import run_doctor

    return run_doctor(settings)


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.integrations.temporal import TemporalUnavailableError
    from aiops.worker import StartupError, run_worker

    try:
        asyncio.run(run_worker(settings, start_detection=args.start_detection))
    except (TemporalUnavailableError, StartupError) as exc:
        raise UserError(str(exc)) from exc
    return 0


def _cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.frontdoor import FrontDoorError
    from aiops.mcp.server import create_server, http_app
    from aiops.telemetry.mcp import ToolCallMetrics, serve_http

    os.environ.setdefault("FASTMCP_CHECK_FOR_UPDATES", "off")
    if args.transport == "stdio":
        create_server(settings).run(transport="stdio", show_banner=False)
        return 0
    host = args.host or settings.mcp.host
    port = args.port or settings.mcp.port
    try:
        app = http_app(settings, host, middleware=[ToolCallMetrics()])
    except FrontDoorError as exc:
        raise UserError(str(exc)) from exc
    asyncio.run(serve_http(app, settings, host, port))
    return 0


def _cmd_webhook(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.frontdoor import FrontDoorError
    from aiops.incidents.rules import RulesError
    from aiops.integrations.temporal import TemporalUnavailableError
    from aiops.webhook import serve_webhook

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
    settings = settings.model_copy(
        update={"alertmanager": settings.alertmanager.model_copy(update=overrides)}
    )
    try:
        asyncio.run(serve_webhook(settings))
    except (FrontDoorError, TemporalUnavailableError, RulesError) as exc:
        raise UserError(str(exc)) from exc
    return 0


def _cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.devstack import DevStackError, run_dev
    from aiops.integrations.temporal import TemporalUnavailableError
    from aiops.worker import StartupError

    try:
        asyncio.run(run_dev(settings))
    except (DevStackError, TemporalUnavailableError, StartupError) as exc:
        raise UserError(str(exc)) from exc
    return 0


async def _with_client(settings: Settings, action: Callable[[Client], Awaitable[int]]) -> int:
    from aiops.incidents import IncidentError, KeyFileError
    from aiops.integrations.temporal import TemporalUnavailableError, connect

    try:
        client = await connect(settings.temporal)
        return await action(client)
    except (TemporalUnavailableError, IncidentError, KeyFileError) as exc:
        message = str(exc)
        if message.startswith("no incident"):
            message += "; `aiops incidents list` shows them"
        raise UserError(message) from exc


def _cmd_incidents_list(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.incidents import IncidentClient

    async def action(client: Client) -> int:
        found = await IncidentClient(client).find(limit=args.limit)
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "id": i.id,
                            "execution": i.execution,
                            "started_at": i.started_at.isoformat(),
                            "closed_at": i.closed_at.isoformat() if i.closed_at else None,
                        }
                        for i in found
                    ],
                    indent=2,
                )
            )
            return 0
        if not found:
            print("no incidents")
        for item in found:
            print(f"{item.id:<40} {item.execution:<11} {item.started_at:%Y-%m-%d %H:%M:%S}")
        return 0

    return asyncio.run(_with_client(settings, action))


def _cmd_incidents_show(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.incidents import IncidentClient

    async def action(client: Client) -> int:
        view = await IncidentClient(client).show(args.incident_id)
        data = {
            "id": view.id,
            "execution": view.execution,
            "status": view.status.value if view.status else None,
            "pending_approval": view.pending.model_dump(mode="json") if view.pending else None,
            "report": view.report.model_dump(mode="json") if view.report else None,
            "temporal_ui": f"{settings.temporal.ui_url}/namespaces/"
            f"{settings.temporal.namespace}/workflows/{view.id}",
        }
        print(json.dumps(data, indent=2))
        return 0

    return asyncio.run(_with_client(settings, action))


def _cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    """`aiops approve|reject`: signed with your own key, so the decision counts as the person
    the policy maps that key to; the CLI cannot name anyone else."""
    from aiops.incidents import DecisionSigner, IncidentClient, KeyFileError

    try:  # before connecting: a key problem is the person's to fix, whatever Temporal does
        signer = DecisionSigner.person(settings.signing.cli_key)
    except KeyFileError as exc:
        raise UserError(str(exc)) from exc

    async def action(client: Client) -> int:
        outcome = await IncidentClient(client).decide(
            args.incident_id,
            signer,
            approve=args.command == "approve",
            plan_hash=args.plan_hash,
            reason=getattr(args, "reason", "") or "",
        )
        print(outcome.message)
        return 0

    return asyncio.run(_with_client(settings, action))


def _cmd_key(args: argparse.Namespace, settings: Settings) -> int:
    """`aiops key generate|show`: the key that proves who decided."""
    from aiops.incidents.signing import KeyFileError, generate_key_file, load_key_file, public_key
    from aiops.policy.identities import fingerprint

    path = Path(args.file) if args.file else settings.signing.cli_key
    try:
        if args.key_command == "generate":
            key = generate_key_file(path, force=args.force)
        else:
            key = load_key_file(path)
    except KeyFileError as exc:
        raise UserError(str(exc)) from exc
    public = public_key(key)
    print(f"key file     {path}")
    print(f"public key   {public}")
    print(f"fingerprint  {fingerprint(public)}")
    print(
        "Put the public key (or its fingerprint) in the policy: under "
        "approvals.identities.<you>.cli for your own key, or as approvals.front_doors[].key "
        "for a front door (the MCP server, the Slack app)."
    )
    return 0


def delegate(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_: str, module: str
) -> None:
    """A subcommand implemented by a module's `configure_parser(p)` and `run(args) -> int`."""
    mod = importlib.import_module(module)
    p = sub.add_parser(name, help=help_)
    mod.configure_parser(p)

    def handler(args: argparse.Namespace, settings: Settings) -> int:
        code: int = mod.run(args)
        return code

    p.set_defaults(handler=handler)


# The lab, the demo and the evaluation harness are another distribution (aiops-lab, in lab/):
# it adds its commands through this entry-point group, so the product never imports it.
LAB_ENTRY_POINTS = "aiops.cli"
LAB_COMMANDS = {
    "demo": "the whole product on the lab: inject a fault, watch aiops detect, diagnose, "
    "approve, remediate and verify",
    "lab": "the demo lab: a simulated shop on a simulated cluster",
    "eval": "measure detection and root-cause analysis on datasets",
}


def _lab_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands of installed plugins; without the lab, its commands say how to get it."""
    registered = set()
    for entry in entry_points(group=LAB_ENTRY_POINTS):
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
            entry.load()
        )
        before = set(sub.choices)
        register(sub)
        registered |= set(sub.choices) - before
    for name, help_ in LAB_COMMANDS.items():
        if name in registered:
            continue
        p = sub.add_parser(name, help=f"{help_} (needs the lab package)")
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(handler=_lab_missing)


def _lab_missing(args: argparse.Namespace, settings: Settings) -> int:
    raise UserError(
        f"`aiops {args.command}` comes with the lab, which is not installed; install it with "
        "`pip install 'aiops-daemon[lab]'` (or `uv sync` in a clone of the repository)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiops",
        description="Detect anomalies in Prometheus, find the root cause, and heal Kubernetes "
        "with allow-listed, approved, audited playbooks.",
    )
    parser.add_argument("--config", metavar="FILE", help=f"YAML settings file (or ${CONFIG_ENV})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("dev", help="run Temporal dev server + UI, worker and MCP server (HTTP)")
    p.set_defaults(handler=_cmd_dev)
    p = sub.add_parser("worker", help="run a Temporal worker for incidents")
    p.add_argument(
        "--start-detection",
        action="store_true",
        help="also start the detection loop (once per namespace; idempotent)",
    )
    p.set_defaults(handler=_cmd_worker)
    p = sub.add_parser("mcp", help="serve the MCP tools to chat assistants")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", help="HTTP bind address (default from settings: 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default from settings)")
    p.set_defaults(handler=_cmd_mcp)
    p = sub.add_parser(
        "webhook", help="serve the Alertmanager webhook receiver (alerts open incidents)"
    )
    p.add_argument("--host", help="bind address (default from settings: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from settings: 8766)")
    p.set_defaults(handler=_cmd_webhook)
    delegate(
        sub,
        "detect",
        "run detection passes against Prometheus and print anomalies",
        "aiops.activities.detection",
    )
    p = sub.add_parser("doctor", help="check Temporal, Prometheus, Kubernetes, LLM and Slack")
    p.set_defaults(handler=_cmd_doctor)
    p = sub.add_parser("config", help="inspect settings")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    config_sub.add_parser("show", help="effective settings, secrets masked").set_defaults(
        handler=_cmd_config_show
    )
    p = sub.add_parser("incidents", help="list and show incidents")
    inc_sub = p.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)
    q = inc_sub.add_parser("list", help="recent incidents, newest first")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=_cmd_incidents_list)
    q = inc_sub.add_parser("show", help="one incident: status, pending plan, report")
    q.add_argument("incident_id", metavar="ID")
    q.set_defaults(handler=_cmd_incidents_show)
    p = sub.add_parser("key", help="your signing key: decisions count only when signed")
    key_sub = p.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    q = key_sub.add_parser("generate", help="make a key; print its public half for the policy")
    q.add_argument("--file", help="where (default: AIOPS_SIGNING__CLI_KEY)")
    q.add_argument("--force", action="store_true", help="replace an existing key")
    q.set_defaults(handler=_cmd_key)
    q = key_sub.add_parser("show", help="print the public half of a key")
    q.add_argument("--file", help="which (default: AIOPS_SIGNING__CLI_KEY)")
    q.set_defaults(handler=_cmd_key)
    p = sub.add_parser("approve", help="approve the plan awaiting a decision")
    p.add_argument("incident_id", metavar="ID")
    p.add_argument("--plan-hash", help="approve only if this is still the pending plan")
    p.set_defaults(handler=_cmd_decide)
    p = sub.add_parser("reject", help="reject the plan awaiting a decision")
    p.add_argument("incident_id", metavar="ID")
    p.add_argument("--reason", required=True, help="why, for the audit trail")
    p.add_argument("--plan-hash", help="reject only if this is still the pending plan")
    p.set_defaults(handler=_cmd_decide)
    p = sub.add_parser("playbooks", help="work with playbook files")
    pb_sub = p.add_subparsers(dest="playbooks_command", metavar="ACTION", required=True)
    delegate(
        pb_sub,
        "validate",
        "check playbook files; name file, line and field of errors",
        "aiops.playbooks.cli",
    )
    p = sub.add_parser("policy", help="work with policies")
    pol_sub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    delegate(
        pol_sub,
        "explain",
        "print a policy decision with every reason behind it",
        "aiops.policy.cli",
    )
    _lab_commands(sub)
    p = sub.add_parser("slack", help="Slack approvals")
    slack_sub = p.add_subparsers(dest="slack_command", metavar="ACTION", required=True)
    delegate(
        slack_sub,
        "check",
        "verify the bot token and channel; name what is missing",
        "aiops.approvals.slack.check",
    )
    delegate(
        slack_sub,
        "serve",
        "run the Slack approvals app (Socket Mode or HTTP)",
        "aiops.approvals.slack.app",
    )
    delegate(
        slack_sub, "manifest", "print the Slack app manifest", "aiops.approvals.slack.manifest"
    )
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(handler=_cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with usage on unknown commands or flags
    if args.config:
        os.environ[CONFIG_ENV] = args.config
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"aiops: {exc}", file=sys.stderr)
        return 2
    from aiops.integrations.redact import lazy_data

    configure_logging(
        settings.log.level, settings.log.format, redact=lazy_data(settings.llm.redact_patterns)
    )
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except UserError as exc:
        print(f"aiops: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:  # a setting found unusable only once used (a port taken)
        print(f"aiops: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """Console-script entry. Exits through os._exit: the Temporal core runtime's threads can
    crash CPython's finalisation after a failed connection, turning a clean error into an abort."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
