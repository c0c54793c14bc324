"""The MCP server skeleton through the in-memory fastmcp client, against the real dev server."""

from __future__ import annotations

import pytest
from fastmcp import Client as McpClient
from fastmcp.exceptions import ToolError
from temporalio.testing import WorkflowEnvironment

from aiops.config import McpSettings, Settings, TemporalSettings
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


READ_TOOLS = {
    "list_incidents",
    "get_incident",
    "list_anomalies",
    "get_audit_trail",
    "query_metrics",
    "get_service_health",
    "list_signals",
    "get_topology",
    "plot_metric",
    "describe_workload",
    "get_events",
    "get_pod_logs",
    "list_playbooks",
    "explain_policy",
}
WRITE_TOOLS = {"approve_remediation", "reject_remediation", "propose_remediation"}


async def test_write_tools_only_when_enabled_and_marked_destructive() -> None:
    off = Settings()
    async with McpClient(create_server(off)) as mcp:
        names = {t.name for t in await mcp.list_tools()}
    assert names == READ_TOOLS
    on = Settings(mcp=McpSettings(enable_write_tools=True))
    async with McpClient(create_server(on)) as mcp:
        tools = {t.name: t for t in await mcp.list_tools()}
    assert set(tools) == READ_TOOLS | WRITE_TOOLS
    for name, tool in tools.items():
        assert tool.annotations is not None
        tags = (tool.meta or {}).get("fastmcp", {}).get("tags", [])
        if name in WRITE_TOOLS:
            assert tool.annotations.destructive_hint is True
            assert tool.annotations.read_only_hint is False
            assert tags == ["remediation"]
            # Nobody can name who approves: the identity comes from the connection.
            assert "identity" not in tool.input_schema.get("properties", {})
        else:
            assert tags == ["investigate"]


async def test_prompts_and_missing_incident_resource() -> None:
    settings = Settings(temporal=TemporalSettings(address="127.0.0.1:1"))
    async with McpClient(create_server(settings)) as mcp:
        prompts = {p.name for p in await mcp.list_prompts()}
        assert prompts == {"investigate-service", "triage-incident"}
        got = await mcp.get_prompt(
            "investigate-service", {"service": "cartservice", "namespace": "boutique"}
        )
        text = got.messages[0].content.text  # type: ignore[union-attr]
        assert "get_service_health(service='cartservice', namespace='boutique')" in text
        triage = await mcp.get_prompt("triage-incident", {"incident_id": "incident-42"})
        assert "get_incident('incident-42')" in triage.messages[0].content.text  # type: ignore[union-attr]
        templates = {t.uri_template for t in await mcp.list_resource_templates()}
        assert {"incident://{incident_id}", "playbook://{playbook_id}"} <= templates
        with pytest.raises(Exception, match=r"Temporal at 127\.0\.0\.1:1 .* unreachable"):
            await mcp.read_resource("incident://incident-42")
