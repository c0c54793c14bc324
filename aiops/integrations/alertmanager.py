"""Alertmanager's webhook (payload version 4) as a source of anomalies.

Alert rules people already have can open investigations this way. An alert only starts an
investigation: it carries no authority, so nothing it says can lower what policy requires.

Callers authenticate the ways Alertmanager's `http_config` can: a bearer token
(`authorization: {credentials: ...}`) or basic auth. Anything else gets 401; bodies above the cap
get 413; malformed payloads get 400 with the reason; nothing is half-accepted. When incidents
cannot be opened (Temporal unreachable) the answer is 503, so Alertmanager retries.

Without credentials (`auth=None`) anyone who can reach the port may open investigations; the
caller allows that only on a loopback address (see aiops.webhook).
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aiops.domain import Anomaly, Direction

MAX_BODY_BYTES = 1_048_576
MAX_ALERTS = 1_000

AnomalySink = Callable[[list[Anomaly]], Awaitable[None]]


class SinkUnavailableError(Exception):
    """The sink could not take the anomalies now; the message says why. Answered with 503."""


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime  # noqa: N815 - Alertmanager's field name
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = ""


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""  # noqa: N815
    alerts: list[WebhookAlert] = Field(max_length=MAX_ALERTS)


class WebhookAuth(BaseModel):
    """Accepted credentials; at least one must be set (an open webhook is refused at start)."""

    bearer_tokens: list[str] = Field(default_factory=list)
    basic: dict[str, str] = Field(default_factory=dict, description="username -> password")

    @field_validator("bearer_tokens")
    @classmethod
    def _real_tokens(cls, value: list[str]) -> list[str]:
        # An empty token would match a bare `Authorization: Bearer` header.
        if any(not t.strip() for t in value):
            raise ValueError("a bearer token must not be empty or whitespace")
        return value

    @field_validator("basic")
    @classmethod
    def _real_users(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not u.strip() or not p.strip() for u, p in value.items()):
            raise ValueError("a basic-auth user name or password must not be empty or whitespace")
        return value

    def check(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return any(hmac.compare_digest(value.encode(), t.encode()) for t in self.bearer_tokens)
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            expected = self.basic.get(user)
            return expected is not None and hmac.compare_digest(
                password.encode(), expected.encode()
            )
        return False


def alert_to_anomaly(alert: WebhookAlert) -> Anomaly:
    labels = dict(alert.labels)
    name = labels.pop("alertname", "alert")
    severity = labels.get("severity", "warning")
    score = {"critical": 1.0, "page": 1.0, "warning": 0.7, "info": 0.3}.get(severity, 0.7)
    return Anomaly(
        signal=f"alert:{name}",
        series=labels,
        query=_expr_from_generator(alert.generatorURL),
        start=alert.startsAt,
        score=score,
        direction=Direction.BOTH,
        source="alertmanager",
    )


def _expr_from_generator(url: str) -> str:
    """Prometheus' generatorURL carries the rule's expression as g0.expr."""
    if not url:
        return ""
    query = parse_qs(urlparse(url).query)
    return query.get("g0.expr", [url])[0]


def create_app(
    auth: WebhookAuth | None, sink: AnomalySink, max_body: int = MAX_BODY_BYTES
) -> Starlette:
    """`auth=None` serves without credentials (loopback only; the caller checks the address)."""
    if auth is not None and not auth.bearer_tokens and not auth.basic:
        raise ValueError(
            "the Alertmanager webhook needs credentials: set a bearer token or basic-auth user "
            "(an unauthenticated webhook could open incidents for anyone)"
        )

    async def receive(request: Request) -> JSONResponse:
        if auth is not None and not auth.check(request.headers.get("authorization")):
            return JSONResponse(
                {"error": "missing or wrong credentials"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer, Basic realm="aiops"'},
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            return _too_large(max_body)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                return _too_large(max_body)
        try:
            payload = _payload(bytes(body))
        except BadPayloadError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        anomalies = [alert_to_anomaly(a) for a in payload.alerts if a.status == "firing"]
        if anomalies:
            try:
                await sink(anomalies)
            except SinkUnavailableError as exc:
                return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse(
            {"accepted": len(anomalies), "ignored_resolved": len(payload.alerts) - len(anomalies)}
        )

    return Starlette(routes=[Route("/alertmanager", receive, methods=["POST"])])


class BadPayloadError(ValueError):
    """The body is not an Alertmanager webhook payload; the message says why (400)."""


def _payload(body: bytes) -> WebhookPayload:
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadPayloadError(f"body is not UTF-8 JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadPayloadError(f"body is not JSON: {exc.msg} at line {exc.lineno}") from None
    except ValueError:
        # Python refuses integers of more than 4300 digits (a guard against slow parsing).
        raise BadPayloadError(
            "body holds a number too long to read; an Alertmanager payload has none"
        ) from None
    except RecursionError:
        # json.loads recurses per nesting level: a small body nested 100,000 deep blows the
        # stack. A real payload is 4 levels deep.
        raise BadPayloadError(
            "body is nested too deeply to be an Alertmanager webhook payload"
        ) from None
    try:
        return WebhookPayload.model_validate(data)
    except ValidationError as exc:
        raise BadPayloadError(
            "not an Alertmanager webhook payload (version 4): " + _first_error(exc)
        ) from None


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {
            "error": f"body larger than {limit} bytes; lower max_alerts in "
            "Alertmanager's webhook_configs"
        },
        status_code=413,
    )


def _first_error(exc: ValidationError) -> str:
    err: dict[str, Any] = dict(exc.errors()[0])
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{where}: {err['msg']}"
