"""HTTP mode: Slack posts clicks to an interactivity endpoint (needs a URL Slack can reach).

Every request must carry Slack's signature over `v0:<timestamp>:<body>` with the app's signing
secret; timestamps more than five minutes from now are refused, and so is a request already seen
(same signature) within that window, so a captured request cannot be replayed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from aiops.approvals.slack.handlers import ApprovalHandler, Outcome
from aiops.logs import get_logger

log = get_logger(__name__)

WINDOW_S = 300
PATH = "/slack/interactions"


class SignatureError(Exception):
    """The request is not provably from Slack, or not fresh; it is refused."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class RequestVerifier:
    def __init__(
        self,
        signing_secret: str,
        *,
        window_s: int = WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not signing_secret:
            raise ValueError("the Slack signing secret is empty; set AIOPS_SLACK__SIGNING_SECRET")
        self._secret = signing_secret
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[str, int] = {}

    def verify(self, body: bytes, timestamp: str | None, signature: str | None) -> None:
        if not timestamp or not signature:
            raise SignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
        try:
            ts = int(timestamp)
        except ValueError as exc:
            raise SignatureError("X-Slack-Request-Timestamp is not a number") from exc
        now = self.clock()
        if abs(now - ts) > self.window_s:
            raise SignatureError(
                f"timestamp is {int(now - ts)} s away from now; more than "
                f"{self.window_s} s is refused (check the clock)"
            )
        if not hmac.compare_digest(sign(self._secret, timestamp, body), signature):
            raise SignatureError("signature does not match the signing secret")
        self._seen = {s: t for s, t in self._seen.items() if abs(now - t) <= self.window_s}
        if signature in self._seen:
            raise SignatureError("request already received (replay)")
        self._seen[signature] = ts


class InteractionEndpoint:
    """The aiohttp application answering Slack's interactivity requests."""

    def __init__(self, handler: ApprovalHandler, verifier: RequestVerifier) -> None:
        self.handler = handler
        self.verifier = verifier
        self._tasks: set[asyncio.Task[Outcome | None]] = set()
        self.outcomes: list[Outcome] = []
        self.app = web.Application()
        self.app.router.add_post(PATH, self._interaction)
        self.app.router.add_get("/healthz", self._health)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _interaction(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            self.verifier.verify(
                body,
                request.headers.get("X-Slack-Request-Timestamp"),
                request.headers.get("X-Slack-Signature"),
            )
        except SignatureError as exc:
            log.warning("slack request refused", reason=str(exc), remote=request.remote)
            return web.json_response({"ok": False, "error": str(exc)}, status=401)
        try:
            payload = _payload(body)
        except ValueError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        # Slack wants an answer within three seconds; the decision goes on in the background.
        task = asyncio.create_task(self._handle(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=200)

    async def _handle(self, payload: dict[str, Any]) -> Outcome | None:
        try:
            outcome = await self.handler.handle(payload)
        except Exception:
            log.exception("slack click failed")
            return None
        if outcome is not None:
            self.outcomes.append(outcome)
        return outcome


def _payload(body: bytes) -> dict[str, Any]:
    form = parse_qs(body.decode("utf-8", errors="replace"))
    raw = form.get("payload")
    if not raw:
        raise ValueError("no `payload` form field; expected an interactivity request")
    try:
        data = json.loads(raw[0])
    except json.JSONDecodeError as exc:
        raise ValueError(f"`payload` is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("`payload` must be a JSON object")
    return data
