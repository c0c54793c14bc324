"""HTTP mode: Slack posts clicks to an interactivity endpoint (needs a URL Slack can reach).

Every request must carry Slack's signature over `v0:<timestamp>:<body>` with the app's signing
secret (checked by slack_sdk's SignatureVerifier); timestamps more than five minutes from now are
refused, and so is a request already seen (same signature) within that window, so a captured
request cannot be replayed. The endpoint follows the front-door rule (aiops.frontdoor): Host
names, browser origins, and Slack's own body type (a signed form, never JSON).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_sdk.signature import Clock, SignatureVerifier

from aiops.approvals.slack.handlers import ApprovalHandler, Outcome
from aiops.frontdoor import FrontDoor, refuse
from aiops.logs import get_logger

log = get_logger(__name__)

WINDOW_S = 300  # slack_sdk's window; checked first here only to say why a request is refused
PATH = "/slack/interactions"
FORM = "application/x-www-form-urlencoded"


class SignatureError(Exception):
    """The request is not provably from Slack, or not fresh; it is refused."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's signature of a request (what Slack sends as X-Slack-Signature)."""
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None  # only None without a timestamp
    return signature


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class RequestVerifier:
    def __init__(self, signing_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        if not signing_secret.strip():
            raise ValueError("the Slack signing secret is empty; set AIOPS_SLACK__SIGNING_SECRET")
        self._slack = SignatureVerifier(signing_secret, clock=_Clock(clock))
        self.clock = clock
        self._seen: dict[str, int] = {}

    def verify(self, body: bytes, timestamp: str | None, signature: str | None) -> None:
        if not timestamp or not signature:
            raise SignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
        if not timestamp.isdigit():
            raise SignatureError("X-Slack-Request-Timestamp is not a number")
        ts, now = int(timestamp), self.clock()
        if abs(now - ts) > WINDOW_S:
            raise SignatureError(
                f"timestamp is {int(now - ts)} s away from now; more than "
                f"{WINDOW_S} s is refused (check the clock)"
            )
        if not self._slack.is_valid(body=body, timestamp=timestamp, signature=signature):
            raise SignatureError("signature does not match the signing secret")
        # The replay cache slack_sdk does not keep: a signature is accepted once in its window.
        self._seen = {s: t for s, t in self._seen.items() if abs(now - t) <= WINDOW_S}
        if signature in self._seen:
            raise SignatureError("request already received (replay)")
        self._seen[signature] = ts


def slack_door(host: str, allowed_hosts: tuple[str, ...] = ()) -> FrontDoor:
    return FrontDoor(
        name="the Slack interactivity endpoint",
        host=host,
        credentials=True,  # every request is signed; an unsigned one never gets past verify()
        credentials_setting="AIOPS_SLACK__SIGNING_SECRET",
        hosts_setting="AIOPS_SLACK__ALLOWED_HOSTS",
        allowed_hosts=allowed_hosts,
    )


def _front_door(door: FrontDoor) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        refusal = refuse(
            door,
            method=request.method,
            host=request.headers.get("Host", ""),
            origin=request.headers.get("Origin"),
            content_type=request.headers.get("Content-Type"),
            body_type=FORM,
        )
        if refusal is not None:
            return web.json_response({"ok": False, "error": refusal[1]}, status=refusal[0])
        return await handler(request)

    return check


class InteractionEndpoint:
    """The aiohttp application answering Slack's interactivity requests."""

    def __init__(
        self,
        handler: ApprovalHandler,
        verifier: RequestVerifier,
        door: FrontDoor | None = None,
    ) -> None:
        self.handler = handler
        self.verifier = verifier
        self._tasks: set[asyncio.Task[Outcome | None]] = set()
        self.outcomes: list[Outcome] = []
        self.app = web.Application(middlewares=[_front_door(door or slack_door("127.0.0.1"))])
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
