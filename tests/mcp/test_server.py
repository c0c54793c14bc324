"""The MCP server skeleton through the in-memory fastmcp client, against the real dev server."""

from __future__ import annotations

import pytest
from fastmcp import Client as McpClient
from fastmcp.exceptions import ToolError
from temporalio.testing import WorkflowEnvironment

from aiops.config import Settings, TemporalSettings
from aiops.mcp.server import create_server


@pytest.fixture
def settings(temporal_env: WorkflowEnvironment) -> Settings:
    address = temporal_env.client.service_client.config.target_host
    return Settings(temporal=TemporalSettings(address=address))


async def test_read_tools_are_annotated_read_only(settings: Settings) -> None:
    async with McpClient(create_server(settings)) as mcp:
        tools = {tool.name: tool for tool in await mcp.list_tools()}
    assert {"list_incidents", "get_incident"} <= set(tools)
    for tool in tools.values():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True


async def test_unknown_incident_is_an_actionable_tool_error(settings: Settings) -> None:
    async with McpClient(create_server(settings)) as mcp:
        with pytest.raises(ToolError, match="no incident 'incident-nope'; list_incidents"):
            await mcp.call_tool("get_incident", {"incident_id": "incident-nope"})
        with pytest.raises(ToolError, match="limit must be between 1 and 200"):
            await mcp.call_tool("list_incidents", {"limit": 0})
        with pytest.raises(ToolError, match="status must be one of"):
            await mcp.call_tool("list_incidents", {"status": "x' OR 1=1"})


async def test_unreachable_temporal_is_reported_not_raised() -> None:
    settings = Settings(temporal=TemporalSettings(address="127.0.0.1:1"))
    async with McpClient(create_server(settings)) as mcp:
        with pytest.raises(ToolError, match=r"Temporal at 127\.0\.0\.1:1 .* unreachable"):
            await mcp.call_tool("list_incidents", {})
