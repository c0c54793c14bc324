"""The MCP server's one redaction step: every tool answer (text, structured content), every
resource and every tool error passes the redactor on its way out, whichever tool made it."""

from __future__ import annotations

import mcp.types as mt
from fastmcp.exceptions import ToolError
from fastmcp.resources.base import ResourceResult
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from aiops.integrations.redact import Redactor


class RedactAnswers(Middleware):
    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        try:
            result = await call_next(context)
        except ToolError as exc:
            # Error texts quote what failed: a Kubernetes message, a PromQL fragment.
            raise ToolError(self.redactor.text(str(exc))) from None
        content = [
            block.model_copy(update={"text": self.redactor.text(block.text)})
            if isinstance(block, mt.TextContent)
            else block
            for block in result.content
        ]
        structured = result.structured_content
        return ToolResult(
            content=content,
            structured_content=self.redactor.data(structured) if structured is not None else None,
            meta=result.meta,
            is_error=result.is_error,
        )

    async def on_read_resource(
        self,
        context: MiddlewareContext[mt.ReadResourceRequestParams],
        call_next: CallNext[mt.ReadResourceRequestParams, ResourceResult],
    ) -> ResourceResult:
        result = await call_next(context)
        for item in result.contents:
            if isinstance(item.content, str):
                item.content = self.redactor.text(item.content)
        return result
