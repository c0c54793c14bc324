"""The Temporal runtime of a process: its SDK metrics on a loopback port (appended to our
/metrics by the telemetry server) and the Rust core's log lines forwarded into Python logging, so
they are rendered like every other line. One runtime per process, made the default so every
`Client.connect` (worker, MCP server, webhook, Slack app) uses it without being told."""

from __future__ import annotations

import logging
import socket

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

_installed: tuple[Runtime, str | None] | None = None


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def install_runtime(*, sdk_metrics: bool) -> str | None:
    """Install the process's runtime once; the URL of the SDK metrics, if any."""
    global _installed
    if _installed is not None:
        return _installed[1]
    url = None
    prometheus = None
    if sdk_metrics:
        port = free_loopback_port()
        prometheus = PrometheusConfig(
            bind_address=f"127.0.0.1:{port}",
            counters_total_suffix=True,
            durations_as_seconds=True,
        )
        url = f"http://127.0.0.1:{port}/metrics"
    runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=prometheus,
        )
    )
    Runtime.set_default(runtime, error_if_already_set=False)
    _installed = (runtime, url)
    return url
