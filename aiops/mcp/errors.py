"""Argument errors in words a person can act on: fastmcp reports a bad argument with pydantic's
full text (input types, documentation links); this middleware names the argument, what was
wrong and what the tool expects, and nothing else."""

from __future__ import annotations

from typing import Any

import mcp.types as mt
from fastmcp.exceptions import ToolError, ValidationError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from pydantic import ValidationError as PydanticValidationError


class FriendlyArgumentErrors(Middleware):
    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        try:
            return await call_next(context)
        except ValidationError as exc:
            cause = exc.__cause__
            name = context.message.name
            if isinstance(cause, PydanticValidationError):
                raise ToolError(describe(name, cause)) from None
            raise ToolError(f"bad arguments for {name}; see the tool's input schema") from None


def describe(tool: str, exc: PydanticValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{loc}: {_plain(err)}")
    return (
        f"bad arguments for {tool}: "
        + "; ".join(parts)
        + " (the tool's input schema lists each argument and its type)"
    )


def _plain(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "missing; it is required"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return "not an argument of this tool"
    return str(err.get("msg", "invalid value"))
