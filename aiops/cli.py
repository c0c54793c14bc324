"""The `aiops` command.

Every failure a person can fix ends in one line on stderr naming what failed and what to do, and a
non-zero exit: 2 for usage and settings errors, 1 for everything else. No tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version as package_version

from aiops.config import CONFIG_ENV, ConfigError, Settings, load_settings, masked_settings
from aiops.logs import configure_logging

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
    from aiops.worker import run_worker

    try:
        asyncio.run(run_worker(settings))
    except TemporalUnavailableError as exc:
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
        server.run(transport="http", host=host, port=port, show_banner=False)
    return 0


def _cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.devstack import DevStackError, run_dev
    from aiops.integrations.temporal import TemporalUnavailableError

    try:
        asyncio.run(run_dev(settings))
    except (DevStackError, TemporalUnavailableError) as exc:
        raise UserError(str(exc)) from exc
    return 0


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
    p.set_defaults(handler=_cmd_worker)
    p = sub.add_parser("mcp", help="serve the MCP tools to chat assistants")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", help="HTTP bind address (default from settings: 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default from settings)")
    p.set_defaults(handler=_cmd_mcp)
    p = sub.add_parser("doctor", help="check Temporal, Prometheus, Kubernetes, LLM and Slack")
    p.set_defaults(handler=_cmd_doctor)
    p = sub.add_parser("config", help="inspect settings")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    config_sub.add_parser("show", help="effective settings, secrets masked").set_defaults(
        handler=_cmd_config_show
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
