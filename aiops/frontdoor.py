"""One rule for every HTTP front door (the MCP server, the Alertmanager webhook, the Slack HTTP
endpoint, and any health or metrics endpoint):

1. Off loopback, credentials are required: a server on a routable address without them refuses
   to start, naming the setting to set.
2. Blank credentials are no credentials: an empty or whitespace token, password or secret is a
   startup error naming the setting (`blank_credentials`, used by the settings' validators).
3. The Host header must be one the server is known by: loopback names and the bind address, plus
   the names the operator lists (`allowed_hosts`). A page on another site that rebinds its DNS
   name to 127.0.0.1 sends its own name as Host and is refused (421). On a routable address with
   no names listed any Host is accepted: the credentials carry the load there.
4. A request whose body is read must say it is JSON (`Content-Type: application/json`), and a
   browser's `Origin` must be one of the allowed hosts: a cross-site form or `text/plain` POST,
   which a browser sends without asking, is refused (415 / 403).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class FrontDoorError(Exception):
    """A front door must not start as configured; the message names the setting to fix."""


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    host = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def blank_credentials(values: Iterable[str]) -> bool:
    return any(not v.strip() for v in values)


@dataclass(frozen=True)
class FrontDoor:
    """What one HTTP front door serves on and how it authenticates."""

    name: str  # e.g. "the MCP server"
    host: str  # the bind address
    credentials: bool  # whether callers must authenticate
    credentials_setting: str  # e.g. "AIOPS_MCP__TOKENS"
    hosts_setting: str  # e.g. "AIOPS_MCP__ALLOWED_HOSTS"
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)

    def check(self) -> None:
        """Refuse a routable address without credentials (rule 1)."""
        if not self.credentials and not is_loopback(self.host):
            raise FrontDoorError(
                f"refusing to serve {self.name} on {self.host} without credentials (anyone who "
                f"can reach it could use it); set {self.credentials_setting}, or bind 127.0.0.1"
            )

    def host_names(self) -> tuple[str, ...] | None:
        """The Host names accepted, or None for any (routable address, none listed)."""
        if not self.allowed_hosts and not is_loopback(self.host):
            return None
        bind = () if self.host in ("0.0.0.0", "::", "") else (self.host,)
        return tuple(h.lower() for h in (*LOOPBACK_NAMES, *bind, *self.allowed_hosts))

    def host_allowed(self, host_header: str) -> bool:
        names = self.host_names()
        return names is None or "*" in names or _hostname(host_header) in names

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None:
            return True  # not a browser, or a same-origin GET
        names = self.host_names()
        host = urlsplit(origin).hostname or ""
        # With any Host accepted the credentials decide: a page cannot borrow a bearer token.
        return names is None or "*" in names or host.lower() in names


def guard(app: ASGIApp, door: FrontDoor) -> ASGIApp:
    """The ASGI app behind rules 3 and 4."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = refuse(
            door,
            method=scope["method"],
            host=headers.get("host", ""),
            origin=headers.get("origin"),
            content_type=headers.get("content-type"),
        )
        if refusal is None:
            await app(scope, receive, send)
            return
        status, message = refusal
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return guarded


def refuse(
    door: FrontDoor,
    *,
    method: str,
    host: str,
    origin: str | None,
    content_type: str | None,
    body_type: str = "application/json",
) -> tuple[int, str] | None:
    """Why a request is refused (HTTP status, message), or None when it may pass."""
    if not door.host_allowed(host):
        return 421, (
            f"{door.name} is not served under the name {_hostname(host)!r}; add it to "
            f"{door.hosts_setting} if that is how clients reach it"
        )
    if not door.origin_allowed(origin):
        return 403, f"requests from web pages of {origin!r} are refused"
    if method.upper() in BODY_METHODS:
        given = (content_type or "").split(";", 1)[0].strip().lower()
        if given != body_type:
            return 415, f"the body must be sent as Content-Type: {body_type} (got {given!r})"
    return None


def _hostname(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
