"""The telemetry of one long-running aiops process (worker, webhook, MCP server, Slack app):
its health, its /metrics server, its Temporal runtime and, when asked, its tracing.

    telemetry = ProcessTelemetry.start(settings, "worker")
    client = await connect(settings.temporal)          # uses the runtime installed above
    async with telemetry.beside(client, incidents=True):
        ...                                            # serve; telemetry.serving.set() when up
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from importlib.metadata import version as package_version

from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Interceptor

from aiops.config import Settings
from aiops.telemetry import metrics
from aiops.telemetry.health import Flag, Health
from aiops.telemetry.incidents import keep_collecting
from aiops.telemetry.interceptor import TelemetryInterceptor
from aiops.telemetry.runtime import install_runtime
from aiops.telemetry.server import TelemetryApp, TelemetryServer
from aiops.telemetry.tracing import flush_traces, tracing_interceptors

TEMPORAL_CHECK_EVERY_S = 15.0


class ProcessTelemetry:
    def __init__(self, settings: Settings, process: str, server: TelemetryServer | None) -> None:
        self.settings = settings
        self.process = process
        self.server = server
        self.health = server.app.health if server else Health()
        self.serving = Flag(f"{process} is starting")
        self.temporal = Flag("Temporal not reached yet")
        self.health.add_check("serving", self.serving)
        self._tracing: list[Interceptor] | None = None

    @classmethod
    def start(cls, settings: Settings, process: str) -> ProcessTelemetry:
        """Install the runtime and start the server (when AIOPS_TELEMETRY__PORT is set)."""
        cfg = settings.telemetry
        metrics.BUILD.info({"version": package_version("aiops-daemon"), "process": process})
        # Bind first: a taken port fails the start before anything global is installed.
        server = TelemetryServer(TelemetryApp(Health()), cfg.host, cfg.port) if cfg.port else None
        sdk_url = install_runtime(sdk_metrics=server is not None)
        if server is not None:
            server.app.extra_metrics_url = sdk_url
            server.start()
        return cls(settings, process, server)

    def interceptors(self) -> list[Interceptor]:
        """For the worker: metrics and log context, plus tracing when an endpoint is set."""
        if self._tracing is None:
            self._tracing = tracing_interceptors(self.settings.telemetry)
        return [TelemetryInterceptor(), *self._tracing]

    @contextlib.asynccontextmanager
    async def beside(
        self, client: Client | None, *, incidents: bool = False
    ) -> AsyncIterator[None]:
        """Beat the liveness clock from this loop, check Temporal, and (on one worker) read the
        incident gauges, for as long as the block runs."""
        if client is not None:
            self.health.add_check("temporal", self.temporal)
        tasks = [asyncio.create_task(self.health.keep_beating(self._checker(client)))]
        if incidents and client is not None:
            tasks.append(asyncio.create_task(keep_collecting(client)))
        try:
            yield
        finally:
            self.serving.clear(f"{self.process} is stopping")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _checker(self, client: Client | None) -> _TemporalCheck | None:
        return _TemporalCheck(client, self.temporal) if client is not None else None

    def stop(self) -> None:
        if self._tracing:
            flush_traces()
        if self.server is not None:
            self.server.stop()


class _TemporalCheck:
    """Asks Temporal whether it is serving, every TEMPORAL_CHECK_EVERY_S, from the beat."""

    def __init__(self, client: Client, flag: Flag) -> None:
        self.client = client
        self.flag = flag
        self.last: float | None = None

    async def __call__(self) -> None:
        now = asyncio.get_running_loop().time()
        if self.last is not None and now - self.last < TEMPORAL_CHECK_EVERY_S:
            return
        self.last = now
        try:
            await self.client.service_client.check_health(timeout=timedelta(seconds=5))
        except (RPCError, RuntimeError) as exc:
            self.flag.clear(f"Temporal at {self.client.service_client.config.target_host}: {exc}")
            return
        self.flag.set()
