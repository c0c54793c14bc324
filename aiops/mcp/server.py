"""The MCP server: a thin client of the incident workflows for chat assistants.

It reads workflow state, metrics and the cluster (read-only), and, when enabled in settings,
sends `decide` updates to the workflows; it never changes the cluster itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.lifespan import Lifespan, lifespan
from starlette.types import ASGIApp

from aiops.config import Settings
from aiops.frontdoor import FrontDoor, guard
from aiops.mcp import prompts, resources, tools_read, tools_write
from aiops.mcp.auth import build_auth
from aiops.mcp.backends import Backends
from aiops.mcp.errors import FriendlyArgumentErrors
from aiops.mcp.redaction import RedactAnswers
from aiops.mcp.tools_read import READ_ONLY

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
        lifespan=_warm_up(b),
    )
    mcp.add_middleware(FriendlyArgumentErrors())
    mcp.add_middleware(RedactAnswers(b.redactor))
    tools_read.register(mcp, b)
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
    settings: Settings, host: str | None = None, backends: Backends | None = None
) -> ASGIApp:
    """The streamable-HTTP app (path /mcp) behind the front-door rule; raises FrontDoorError
    on a routable address without tokens. `aiops mcp --transport http` and `aiops dev` serve
    this same app, so neither can skip the token check."""
    door = mcp_door(settings, host)
    door.check()
    # fastmcp's own Host/Origin guard checks the same names as ours, so the two never disagree.
    names = door.host_names()
    app = create_server(settings, backends).http_app(
        host_origin_protection=names is not None,
        allowed_hosts=list(names) if names is not None else None,
    )
    return guard(app, door)


def _warm_up(b: Backends) -> Lifespan:
    @lifespan
    async def warm(server: FastMCP) -> AsyncIterator[dict[str, Any]]:
        # In the background: the server answers initialize and tools/list at once.
        task = asyncio.create_task(b.warm_up())
        try:
            yield {}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return warm
