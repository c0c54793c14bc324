"""The MCP server's telemetry: its tool calls (aiops_mcp_tool_calls) and its health."""

from __future__ import annotations

import socket

import mcp.types as mt
import uvicorn
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult
from starlette.types import ASGIApp

from aiops.config import Settings
from aiops.telemetry import metrics
from aiops.telemetry.process import ProcessTelemetry


class ToolCallMetrics(Middleware):
    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        tool = context.message.name
        try:
            result = await call_next(context)
        except Exception:
            # Counted, then re-raised untouched: the server turns it into the client's error.
            metrics.MCP_TOOL_CALLS.labels(tool, "error").inc()
            raise
        metrics.MCP_TOOL_CALLS.labels(tool, "ok").inc()
        return result


async def serve_http(app: ASGIApp, settings: Settings, host: str, port: int) -> None:
    """The MCP server's HTTP app (aiops.mcp.server.http_app, behind the front-door rule), with
    its health and /metrics beside it: ready once its port accepts connections, alive while its
    event loop turns."""
    telemetry = ProcessTelemetry.start(settings, "mcp")
    telemetry.health.add_check("listening", lambda: _accepts(host, port))
    telemetry.serving.set()
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level="warning")
    try:
        async with telemetry.beside(None):
            await uvicorn.Server(config).serve()
    finally:
        telemetry.stop()


def _accepts(host: str, port: int) -> str | None:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with socket.create_connection((target, port), timeout=1):
            return None
    except OSError as exc:
        return f"MCP port {port} does not accept connections ({exc.strerror or exc})"
