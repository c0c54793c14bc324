"""The `aiops` command.

Every failure a person can fix ends in one line on stderr naming what failed and what to do, and a
non-zero exit: 2 for usage and settings errors, 1 for everything else. No tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

from aiops.config import (
    CONFIG_ENV,
    ConfigError,
    Settings,
    is_loopback,
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
    print(f"aiops {package_version('aiops')}")
    return 0


def _cmd_config_show(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(masked_settings(settings), indent=2, sort_keys=True))
    return 0


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
    from aiops.mcp.server import create_server

    os.environ.setdefault("FASTMCP_CHECK_FOR_UPDATES", "off")
    server = create_server(settings)
    if args.transport == "stdio":
        server.run(transport="stdio", show_banner=False)
    else:
        host = args.host or settings.mcp.host
        port = args.port or settings.mcp.port
        if not settings.mcp.tokens and not is_loopback(host):
            raise UserError(
                f"refusing to serve MCP on {host} without bearer tokens (anyone could read "
                "incidents); set AIOPS_MCP__TOKENS or bind 127.0.0.1"
            )
        server.run(transport="http", host=host, port=port, show_banner=False)
    return 0


def _cmd_webhook(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.integrations.temporal import TemporalUnavailableError
    from aiops.webhook import WebhookConfigError, serve_webhook
    from aiops.worker import StartupError

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
    settings = settings.model_copy(
        update={"alertmanager": settings.alertmanager.model_copy(update=overrides)}
    )
    try:
        asyncio.run(serve_webhook(settings))
    except (WebhookConfigError, TemporalUnavailableError, StartupError) as exc:
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


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.demo import DemoError, DemoOptions, run_demo
    from aiops.devstack import DevStackError
    from aiops.integrations.temporal import TemporalUnavailableError
    from aiops.worker import StartupError

    if "AIOPS_LOG__LEVEL" not in os.environ:  # the narration is the output; logs only on trouble
        configure_logging("warning", settings.log.format)
    opts = DemoOptions(
        scenario=args.scenario,
        interactive=args.interactive,
        keep_running=args.keep_running,
        timeout_s=args.timeout,
        warmup_s=args.warmup,
        policy=args.policy,
    )
    try:
        return run_demo(settings, opts)
    except (DemoError, DevStackError, TemporalUnavailableError, StartupError) as exc:
        raise UserError(str(exc)) from exc


def _cli_identity(settings: Settings) -> str:
    return settings.cli_identity or getpass.getuser()


async def _with_client(settings: Settings, action: Callable[[Client], Awaitable[int]]) -> int:
    from aiops.approvals.incidents import IncidentError
    from aiops.integrations.temporal import TemporalUnavailableError, connect

    try:
        client = await connect(settings.temporal)
        return await action(client)
    except (TemporalUnavailableError, IncidentError) as exc:
        raise UserError(str(exc)) from exc


def _cmd_incidents_list(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.approvals.incidents import list_incidents

    async def action(client: Client) -> int:
        found = await list_incidents(client, limit=args.limit)
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
    from aiops.approvals.incidents import show_incident

    async def action(client: Client) -> int:
        view = await show_incident(client, args.incident_id)
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
    from aiops.approvals.incidents import decide

    approve = args.command == "approve"

    async def action(client: Client) -> int:
        message = await decide(
            client,
            args.incident_id,
            approve=approve,
            identity=_cli_identity(settings),
            channel="cli",
            plan_hash=args.plan_hash,
            reason=getattr(args, "reason", "") or "",
        )
        print(message)
        return 0

    return asyncio.run(_with_client(settings, action))


def _cmd_lab(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.lab import commands

    state = settings.state_dir
    try:
        if args.lab_command == "up":
            print(commands.up(state, rps=args.rps, scrape_interval=args.scrape_interval))
        elif args.lab_command == "run":
            commands.run(state, rps=args.rps, scrape_interval=args.scrape_interval)
        elif args.lab_command == "inject":
            print(commands.inject(state, Path(args.scenario_file)))
        elif args.lab_command == "status":
            print(commands.status(state))
        else:
            print(commands.down(state))
    except commands.LabError as exc:
        raise UserError(str(exc)) from exc
    return 0


def _cmd_lab_eval(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.devstack import DevStackError
    from aiops.eval import lab_eval
    from aiops.lab.commands import LabError
    from aiops.worker import StartupError

    if "AIOPS_LOG__LEVEL" not in os.environ:  # progress goes to stderr; logs only on trouble
        configure_logging("warning", settings.log.format)
    try:
        return lab_eval.run(args, settings)
    except (lab_eval.LabEvalError, LabError, DevStackError, StartupError) as exc:
        raise UserError(str(exc)) from exc


def _delegate(
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiops",
        description="Detect anomalies in Prometheus, find the root cause, and heal Kubernetes "
        "with allow-listed, approved, audited playbooks.",
    )
    parser.add_argument("--config", metavar="FILE", help=f"YAML settings file (or ${CONFIG_ENV})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo",
        help="the whole product on the lab: inject a fault, watch aiops "
        "detect, diagnose, approve, remediate and verify",
    )
    importlib.import_module("aiops.demo").configure_parser(p)
    p.set_defaults(handler=_cmd_demo)
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
    _delegate(
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
    _delegate(
        pb_sub,
        "validate",
        "check playbook files; name file, line and field of errors",
        "aiops.playbooks.cli",
    )
    p = sub.add_parser("policy", help="work with policies")
    pol_sub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    _delegate(
        pol_sub,
        "explain",
        "print a policy decision with every reason behind it",
        "aiops.policy.cli",
    )
    p = sub.add_parser("eval", help="measure detection and root-cause analysis on datasets")
    eval_sub = p.add_subparsers(dest="eval_command", metavar="DATASET", required=True)
    _delegate(
        eval_sub,
        "nab",
        "NAB scoring (standard, low FP, low FN) of the shipped detector",
        "aiops.eval.nab",
    )
    _delegate(
        eval_sub,
        "smd",
        "SMD/ASD point-wise precision, recall, F1, AUPRC, HitRate",
        "aiops.eval.smd",
    )
    _delegate(
        eval_sub,
        "rca",
        "root-cause ranking on RCAEval-layout cases (AC@k, Avg@5)",
        "aiops.eval.rca",
    )
    p = sub.add_parser("lab", help="the demo lab: a simulated shop on a simulated cluster")
    lab_sub = p.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    for name, help_ in (
        ("up", "start Prometheus, the shop and the lab Kubernetes API"),
        ("run", "run the lab in the foreground (what `up` starts)"),
    ):
        q = lab_sub.add_parser(name, help=help_)
        q.add_argument("--rps", type=float, default=50.0, help="shop traffic, requests/s")
        q.add_argument("--scrape-interval", default="1s", help="Prometheus scrape interval")
        q.set_defaults(handler=_cmd_lab)
    q = lab_sub.add_parser("inject", help="play a scenario file (faults and noise)")
    q.add_argument("scenario_file", metavar="SCENARIO_FILE")
    q.set_defaults(handler=_cmd_lab)
    lab_sub.add_parser("status", help="services, faults and the running scenario").set_defaults(
        handler=_cmd_lab
    )
    lab_sub.add_parser("down", help="stop the lab").set_defaults(handler=_cmd_lab)
    q = lab_sub.add_parser(
        "eval",
        help="play every scenario of a folder through the whole live "
        "system and score detection, RCA, remediation and safety",
    )
    importlib.import_module("aiops.eval.lab_eval").configure_parser(q)
    q.set_defaults(handler=_cmd_lab_eval)
    _delegate(lab_sub, "scenarios", "validate and list scenario files", "aiops.lab.scenario")
    p = sub.add_parser("slack", help="Slack approvals")
    slack_sub = p.add_subparsers(dest="slack_command", metavar="ACTION", required=True)
    _delegate(
        slack_sub,
        "check",
        "verify the bot token and channel; name what is missing",
        "aiops.approvals.slack.check",
    )
    _delegate(
        slack_sub,
        "serve",
        "run the Slack approvals app (Socket Mode or HTTP)",
        "aiops.approvals.slack.app",
    )
    _delegate(
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
    configure_logging(settings.log.level, settings.log.format)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except UserError as exc:
        print(f"aiops: {exc}", file=sys.stderr)
        return 1
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
