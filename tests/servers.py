"""Helpers that start real servers for tests on random 127.0.0.1 ports and stop them."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from aiops.processes import stop_process
from aiops.temporal_setup import SEARCH_ATTRIBUTES


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


class MetricsTarget:
    """A tiny /metrics endpoint whose values the test sets."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {"aiops_test_up": 1.0}
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = "".join(f"{k} {v}\n" for k, v in target.values.items()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path


def prometheus_binary() -> str:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        raise RuntimeError(
            "prometheus is not installed; the README's test command installs it "
            "(apt-get install prometheus)"
        )
    return binary


class PrometheusProcess:
    """The prometheus binary on a fixed port with its config and TSDB in `folder`: `stop()` then
    `start()` brings it back on the same address with the same data, as an operator's restart."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.folder = folder
        self.data_dir = folder / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.folder / "prometheus.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    prometheus_binary(),
                    f"--config.file={self.folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.data_dir}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: _ready(self.url), 30, f"Prometheus on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 15)


@contextlib.contextmanager
def backfilled_prometheus(source: Path) -> Iterator[PrometheusProcess]:
    """Prometheus on the samples of the OpenMetrics file `source` (backfilled with promtool into
    a TSDB beside it), scraping nothing; stopped on leaving."""
    folder = source.parent
    subprocess.run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(source),
            str(folder / "data"),
        ],
        check=True,
        capture_output=True,
    )
    (folder / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    prom = PrometheusProcess(folder)
    try:
        prom.start()
        yield prom
    finally:
        prom.stop()


@contextlib.contextmanager
def run_prometheus(
    scrape_targets: list[str], interval_s: float = 1.0
) -> Iterator[PrometheusServer]:
    prometheus_binary()
    with tempfile.TemporaryDirectory(prefix="aiops-prom-") as tmp:
        prom = PrometheusProcess(Path(tmp), "--web.enable-lifecycle")
        targets = ", ".join(f"'{t}'" for t in scrape_targets)
        interval = f"{round(interval_s * 1000)}ms"  # Prometheus rejects "1.0s"
        (prom.folder / "prometheus.yml").write_text(
            "global:\n"
            f"  scrape_interval: {interval}\n"
            f"  evaluation_interval: {interval}\n"
            "scrape_configs:\n"
            "  - job_name: test\n"
            f"    static_configs: [{{targets: [{targets}]}}]\n"
        )
        try:
            prom.start()
            assert prom.process is not None
            yield PrometheusServer(url=prom.url, process=prom.process, data_dir=prom.data_dir)
        finally:
            prom.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def scraped(url: str, query: str) -> bool:
    try:
        response = httpx.get(url + "/api/v1/query", params={"query": query}, timeout=2)
    except httpx.HTTPError:
        return False
    return bool(response.json().get("data", {}).get("result"))


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """An ASGI app served by uvicorn on a random loopback port, as `http://127.0.0.1:PORT`."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def temporal_dev_server(binary: str) -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (`binary`), SQLite in memory, on a random loopback port,
    with aiops' search attributes; shut down on leaving."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary,
        ip="127.0.0.1",
        port=free_port(),
        ui=False,
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
        search_attributes=[SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES],
    )
    try:
        yield env
    finally:
        await env.shutdown()
