"""The MCP server: a thin client of the incident workflows for chat assistants.

It reads workflow state, metrics and the cluster (read-only), and, when enabled in settings,
sends `decide` updates to the workflows; it never changes the cluster itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.lifespan import Lifespan, lifespan
from fastmcp.server.middleware import Middleware
from starlette.types import ASGIApp

from aiops.config import Settings
from aiops.frontdoor import FrontDoor, guard
from aiops.mcp import (
    prompts,
    resources,
    tools_cluster,
    tools_incidents,
    tools_metrics,
    tools_rules,
    tools_signals,
    tools_write,
)
from aiops.mcp.auth import build_auth
from aiops.mcp.backends import Backends
from aiops.mcp.common import LIFESPAN_KEY, READ_ONLY
from aiops.mcp.errors import FriendlyArgumentErrors
from aiops.mcp.redaction import RedactAnswers

__all__ = ["READ_ONLY", "create_server", "http_app", "mcp_door"]


def create_server(settings: Settings, backends: Backends | None = None) -> FastMCP:
    b = backends or Backends(settings)
    mcp = FastMCP(
        name="aiops",
        instructions=(
            "Investigate incidents that aiops detected in Prometheus and review their "
            "remediation plans. Every action is decided by policy and recorded in Temporal. "
            "Start with list_incidents or get_service_health."
        ),
        # Unexpected exceptions reach the client as "Error calling tool X", never their text.
        mask_error_details=True,
        auth=build_auth(settings),
        lifespan=_open_backends(b),
    )
    mcp.add_middleware(FriendlyArgumentErrors())
    mcp.add_middleware(RedactAnswers(b.redactor))
    # Read tools by backend; each gets the backends from the lifespan context (common.BACKENDS).
    for module in (tools_incidents, tools_metrics, tools_signals, tools_cluster, tools_rules):
        module.register(mcp)
    if settings.mcp.enable_write_tools:
        tools_write.register(mcp, b)
    resources.register(mcp, b)
    prompts.register(mcp)
    return mcp


def mcp_door(settings: Settings, host: str | None = None) -> FrontDoor:
    return FrontDoor(
        name="the MCP server",
        host=host or settings.mcp.host,
        credentials=bool(settings.mcp.tokens),
        credentials_setting="AIOPS_MCP__TOKENS",
        hosts_setting="AIOPS_MCP__ALLOWED_HOSTS",
        allowed_hosts=tuple(settings.mcp.allowed_hosts),
    )


def http_app(
    settings: Settings,
    host: str | None = None,
    backends: Backends | None = None,
    middleware: Sequence[Middleware] = (),
) -> ASGIApp:
    """The streamable-HTTP app (path /mcp) behind the front-door rule; raises FrontDoorError
    on a routable address without tokens. `aiops mcp --transport http` and `aiops dev` serve
    this same app, so neither can skip the token check."""
    door = mcp_door(settings, host)
    door.check()
    # fastmcp's own Host/Origin guard checks the same names as ours, so the two never disagree.
    names = door.host_names()
    server = create_server(settings, backends)
    for extra in middleware:  # e.g. the tool-call counter of `aiops mcp`'s telemetry
        server.add_middleware(extra)
    app = server.http_app(
        host_origin_protection=names is not None,
        allowed_hosts=list(names) if names is not None else None,
    )
    return guard(app, door)


def _open_backends(b: Backends) -> Lifespan:
    """The backends for the tools, in the lifespan context; warmed up in the background so the
    server answers initialize and tools/list at once."""

    @lifespan
    async def open_backends(server: FastMCP) -> AsyncIterator[dict[str, Any]]:
        task = asyncio.create_task(b.warm_up())
        try:
            yield {LIFESPAN_KEY: b}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return open_backends
