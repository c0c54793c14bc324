"""A fault-injecting HTTP proxy on 127.0.0.1, for putting a real server (the lab Kubernetes API,
an LLM endpoint) behind the faults a network and an overloaded server produce.

Every request is forwarded to `upstream` unless a rule picks it; a rule's fault then decides:
- `Answer(status)`: refuse without forwarding (a 409 conflict, a 429, a 503);
- `AnswerAfter(status)`: forward, so the change reaches the server, then answer an error (the
  client must not conclude that nothing happened);
- `Delay(seconds)`: forward after a pause (a slow server);
- `BlackHole()`: accept and never answer (the client's timeout is all that ends the request);
- `Hold()`: forward, then keep the answer until `release()` (a worker dies meanwhile).
Rules apply in order, each at most `times` times (None: always). `requests` logs every request.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str = "injected"


@dataclass(frozen=True)
class AnswerAfter:
    status: int
    reason: str = "injected after the change"


@dataclass(frozen=True)
class Delay:
    seconds: float


@dataclass(frozen=True)
class BlackHole:
    pass


@dataclass(frozen=True)
class Hold:
    pass


Fault = Answer | AnswerAfter | Delay | BlackHole | Hold
Match = Callable[[str, str], bool]  # (method, path with query) -> does the rule apply


@dataclass
class Rule:
    """`fault` on the requests `match` picks, after letting the first `after` of them pass, at
    most `times` times. `holding` counts the requests a Hold keeps now."""

    match: Match
    fault: Fault
    times: int | None = None
    after: int = 0
    seen: int = 0
    hits: int = 0
    holding: int = 0

    def applies(self, method: str, path: str) -> bool:
        if not self.match(method, path):
            return False
        self.seen += 1
        return self.seen > self.after and (self.times is None or self.hits < self.times)


@dataclass
class Seen:
    method: str
    path: str
    fault: str  # the fault's class name, "" when passed through
    at: float = field(default_factory=time.monotonic)
    status: int = 0  # what the server answered (0: nothing, or not yet)


def error(status: int, message: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of a Kubernetes Status, as the API server answers errors."""
    reasons = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError"}
    return (
        status,
        "application/json",
        json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": message,
                "reason": reasons.get(status, "ServiceUnavailable"),
                "code": status,
            }
        ).encode(),
    )


class FaultProxy:
    def __init__(self, upstream: str, rules: list[Rule] | None = None) -> None:
        self.rules = list(rules or [])
        self.requests: list[Seen] = []
        self.held = threading.Event()  # a held request has reached the server
        self._open = threading.Event()  # answers held or black-holed may go
        self._lock = threading.Lock()
        netloc = urlsplit(upstream).netloc
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                seen, rule = proxy._pick(self.command, self.path)
                fault = rule.fault if rule is not None else None
                if isinstance(fault, BlackHole):
                    proxy._open.wait(timeout=600)
                    self.close_connection = True
                    return
                if isinstance(fault, Answer):
                    self._reply(*error(fault.status, fault.reason))
                    return
                if isinstance(fault, Delay):
                    time.sleep(fault.seconds)
                answer = proxy._forward(netloc, self.command, self.path, body, self.headers)
                seen.status = answer[0]
                if isinstance(fault, AnswerAfter):
                    answer = error(fault.status, fault.reason)
                if rule is not None and isinstance(fault, Hold) and not proxy._open.is_set():
                    rule.holding += 1
                    proxy.held.set()
                    proxy._open.wait(timeout=600)
                self._reply(*answer)

            def _reply(self, status: int, kind: str, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True  # the caller gave up or died: that is the point

            # http.server dispatches on do_<METHOD>; every method is handled alike.
            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def _pick(self, method: str, path: str) -> tuple[Seen, Rule | None]:
        with self._lock:
            picked = next((r for r in self.rules if r.applies(method, path)), None)
            if picked is not None:
                picked.hits += 1
            seen = Seen(method, path, type(picked.fault).__name__ if picked else "")
            self.requests.append(seen)
            return seen, picked

    @staticmethod
    def _forward(
        netloc: str, method: str, path: str, body: bytes | None, headers: object
    ) -> tuple[int, str, bytes]:
        sent = {
            k: v
            for k, v in headers.items()  # type: ignore[attr-defined]
            if k.lower() not in ("host", "connection", "keep-alive")
        }
        conn = http.client.HTTPConnection(netloc, timeout=60)
        try:
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            return answer.status, answer.getheader("Content-Type") or "", answer.read()
        finally:
            conn.close()

    def add(self, match: Match, fault: Fault, times: int | None = None, after: int = 0) -> Rule:
        rule = Rule(match, fault, times, after)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """No more faults: everything passes through from now on."""
        with self._lock:
            self.rules.clear()

    def release(self) -> None:
        """Answer held requests, end black-holed ones, and hold nothing from now on."""
        self._open.set()

    def count(self, method: str, path: str, *, dry_run: bool = False) -> int:
        """Requests of `method` on exactly `path` that reached the server (server-side dry runs
        only if `dry_run`)."""
        return len(self.reached(method, path, dry_run=dry_run))

    def reached(self, method: str, path: str = "", *, dry_run: bool = False) -> list[Seen]:
        """Requests of `method` that reached the server, on exactly `path` (any path if empty)
        and answered 2xx there."""
        return [
            r
            for r in self.requests
            if r.method == method
            and (not path or urlsplit(r.path).path == path)
            and ("dryRun" in r.path) == dry_run
            and 200 <= r.status < 300
        ]

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


def on(method: str, path: str, *, dry_run: bool | None = None) -> Match:
    """A match on the method and the exact path (and whether it is a server-side dry run)."""

    def match(m: str, p: str) -> bool:
        if m != method or urlsplit(p).path != path:
            return False
        return dry_run is None or ("dryRun" in p) == dry_run

    return match


def anything(_method: str, _path: str) -> bool:
    return True
