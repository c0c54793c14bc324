"""get_pod_logs through the lab Kubernetes API: secrets in a log never reach the assistant, and
the answer is capped in size."""

from __future__ import annotations

import asyncio

import pytest
from aiops_lab.kubeapi.server import LabApiServer, write_kubeconfig
from fastmcp import Client as McpClient
from fastmcp.exceptions import ToolError

from aiops.mcp.server import create_server
from tests.mcp.conftest import NS, make_settings

SECRET_LINES = [
    "connecting to db with password=hunter2-very-secret",
    "GET /api Authorization: Bearer abcdefghijklmnop0123456789",
    'config {"api_key": "sk-live-0123456789abcdefghij"}',
]


async def test_logs_are_redacted_and_capped(
    lab_api: LabApiServer, tmp_path: pytest.TempPathFactory
) -> None:
    state = lab_api.cluster._state
    pod = next(
        p
        for p in state.store.items("pods")
        if p["metadata"]["namespace"] == NS and p["metadata"]["name"].startswith("cartservice-")
    )
    runtime = state.runtime[pod["metadata"]["uid"]]
    for _ in range(100):  # a container that (re)starts begins a fresh log: wait for it to run
        if runtime.running and len(runtime.logs) >= 3:
            break
        await asyncio.sleep(0.1)
    runtime.logs.extend(f"2026-11-24T12:00:0{i}Z {line}" for i, line in enumerate(SECRET_LINES))
    kubeconfig = write_kubeconfig(tmp_path / "config", lab_api.url)  # type: ignore[operator]
    settings = make_settings(kubeconfig=str(kubeconfig))
    name = pod["metadata"]["name"]
    async with McpClient(create_server(settings)) as mcp:
        logs = (
            await mcp.call_tool("get_pod_logs", {"namespace": NS, "pod": name, "tail_lines": 3})
        ).structured_content
        assert logs["log"].count("[REDACTED]") == 3
        for secret in ("hunter2", "abcdefghijklmnop0123456789", "sk-live-0123456789"):
            assert secret not in logs["log"]
        assert "connecting to db with password=" in logs["log"]  # the context stays readable
        runtime.logs.extend(f"2026-11-24T12:01:00Z line {i} " + "x" * 80 for i in range(40))
        capped = (
            await mcp.call_tool(
                "get_pod_logs", {"namespace": NS, "pod": name, "tail_lines": 40, "max_bytes": 1000}
            )
        ).structured_content
        assert capped["truncated"] is True
        assert len(capped["log"].encode()) <= 1000
        assert capped["log"].rstrip().endswith("line 39 " + "x" * 80)
        with pytest.raises(
            ToolError, match="Kubernetes refused to read the log of pod boutique/ghost-1: HTTP 404"
        ):
            await mcp.call_tool("get_pod_logs", {"namespace": NS, "pod": "ghost-1"})
