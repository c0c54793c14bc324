"""/healthz, /readyz and /metrics on a port of their own, served from a daemon thread.

A separate port keeps the probes and the scrape out of the front doors' rules (credentials, Host
allow-list, JSON bodies): it answers unauthenticated GETs only, with aggregate figures and no
incident content, so it can listen on the pod's address for the kubelet and Prometheus while the
MCP server and the webhook keep their authentication. The Temporal SDK's own metrics, served by
its runtime on a loopback port, are appended to /metrics so one scrape gets both.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, ThreadingWSGIServer

from aiops.config import ConfigError
from aiops.telemetry.health import Health

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

PATHS = ("/healthz", "/readyz", "/metrics")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would drown the log."""


@dataclass
class TelemetryApp:
    health: Health
    extra_metrics_url: str | None = None

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in PATHS:
            return _reply(start, "404 Not Found", {"error": f"no {path}; try {', '.join(PATHS)}"})
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _reply(start, "405 Method Not Allowed", {"error": "GET only"})
        if path == "/metrics":
            body = generate_latest(REGISTRY) + self._sdk_metrics()
            start("200 OK", [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)])
            return [body]
        ok, details = self.health.liveness() if path == "/healthz" else self.health.readiness()
        status = "200 OK" if ok else "503 Service Unavailable"
        return _reply(start, status, {"status": "ok" if ok else "failing", "checks": details})

    def _sdk_metrics(self) -> bytes:
        if not self.extra_metrics_url:
            return b""
        try:
            with urllib.request.urlopen(self.extra_metrics_url, timeout=2) as response:  # noqa: S310 - our loopback URL
                body: bytes = response.read()
        except (urllib.error.URLError, OSError):
            return b"# the Temporal SDK metrics could not be read this time\n"
        return body if body.endswith(b"\n") or not body else body + b"\n"


def _reply(start: StartResponse, status: str, data: dict[str, Any]) -> list[bytes]:
    start(status, [("Content-Type", "application/json")])
    return [json.dumps(data).encode() + b"\n"]


class TelemetryPortError(ConfigError):
    """The telemetry port cannot be bound; the message names the setting to change."""


class TelemetryServer:
    """The running server; `port` is the bound one (ask for 0 to get a free port)."""

    def __init__(self, app: TelemetryApp, host: str, port: int) -> None:
        try:
            self._httpd = make_server(host, port, app, ThreadingWSGIServer, handler_class=_Quiet)
        except OSError as exc:
            raise TelemetryPortError(
                f"cannot serve health and metrics on {host}:{port} ({exc.strerror or exc}); set "
                "AIOPS_TELEMETRY__PORT to a free port (or unset it) and AIOPS_TELEMETRY__HOST "
                "to an address of this machine"
            ) from exc
        self.app = app
        self.host = host
        self.port: int = self._httpd.server_port
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="aiops-telemetry", daemon=True
        )

    def start(self) -> TelemetryServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
