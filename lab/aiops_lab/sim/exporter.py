"""Serve the shop's metrics over HTTP for Prometheus to scrape, and tick the shop in real time.

Stdlib only: one ThreadingHTTPServer on 127.0.0.1 and one ticker thread. `/metrics` renders the
state after the last tick (rendering never advances the simulation, so scrape interval and tick
length are independent).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiops_lab.sim.exposition import render_text
from aiops_lab.sim.shop import Shop

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Optional extra routes: (method, path, body) -> (status, content type, body), or None for 404.
Control = Callable[[str, str, bytes], tuple[int, str, bytes] | None]


class MetricsServer:
    """A running /metrics endpoint; `stop()` shuts it down."""

    def __init__(
        self, shop: Shop, host: str = "127.0.0.1", port: int = 0, control: Control | None = None
    ) -> None:
        self.shop = shop
        handler = _handler_for(shop, control)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.1,), name="lab-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler_for(shop: Shop, control: Control | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/metrics", "/"):
                self._reply(200, CONTENT_TYPE, render_text(shop.families()).encode())
            else:
                self._control("GET", path)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._control("POST", self.path.split("?", 1)[0], self.rfile.read(length))

        def _control(self, method: str, path: str, body: bytes = b"") -> None:
            answer = control(method, path, body) if control is not None else None
            if answer is None:
                self.send_error(404, "only /metrics here")
            else:
                self._reply(*answer)

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # one line per scrape per second is noise

    return Handler


def serve_metrics(
    shop: Shop, port: int = 0, host: str = "127.0.0.1", control: Control | None = None
) -> MetricsServer:
    """Start serving `shop`'s metrics; port 0 picks a free port (see `.port`, `.url`)."""
    return MetricsServer(shop, host, port, control)


class ShopRunner:
    """Steps the shop every `tick` seconds of wall-clock time in a thread. `before_tick(now)`
    runs first in each tick (e.g. a scenario timeline injecting its faults)."""

    def __init__(
        self, shop: Shop, tick: float = 1.0, before_tick: Callable[[float], None] | None = None
    ) -> None:
        self.shop = shop
        self.tick = tick
        self.before_tick = before_tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lab-shop", daemon=True)
        self.errors: list[str] = []

    def start(self) -> ShopRunner:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            now = time.time()
            try:
                if self.before_tick is not None:
                    self.before_tick(now)
                self.shop.step(now)
            except Exception as e:  # keep the lab alive; `errors` surfaces it in status
                self.errors.append(f"{type(e).__name__}: {e}")
                del self.errors[:-10]
            self._stop.wait(max(self.tick - (time.monotonic() - started), 0.0))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
