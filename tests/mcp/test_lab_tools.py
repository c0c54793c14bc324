"""The read tools against the lab: a real Prometheus scraping the simulated shop and the lab
Kubernetes API, through the in-memory fastmcp client."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from fastmcp import Client as McpClient
from fastmcp.exceptions import ToolError
from mcp.types import ImageContent, TextContent
from PIL import Image as PILImage

from aiops.config import Settings
from aiops.mcp.server import create_server
from tests.mcp.conftest import NS


@pytest.fixture
async def mcp(lab_settings: Settings) -> AsyncIterator[McpClient[Any]]:
    async with McpClient(create_server(lab_settings)) as client:
        yield client


async def data(mcp: McpClient[Any], tool: str, **args: Any) -> Any:
    result = await mcp.call_tool(tool, args)
    return (
        result.structured_content.get("result", result.structured_content)
        if result.structured_content is not None
        else result.data
    )


async def test_topology_shows_the_shop_call_graph(mcp: McpClient[Any]) -> None:
    topo = await data(mcp, "get_topology", namespace=NS, window="1m")
    calls = {(c["from"], c["to"]) for c in topo["calls"]}
    assert ("frontend", "cartservice") in calls
    assert ("cartservice", "redis-cart") in calls
    assert all(c["rps"] > 0 for c in topo["calls"])


async def test_service_health_compares_golden_signals_with_baseline(mcp: McpClient[Any]) -> None:
    health = await data(mcp, "get_service_health", service="cartservice", namespace=NS)
    by_signal = {s["signal"]: s for s in health["signals"]}
    assert {"request_rate", "latency_p99", "cpu_usage"} <= set(by_signal)
    assert by_signal["request_rate"]["now"] > 0
    assert by_signal["request_rate"]["baseline"] is not None  # from the backfilled hour
    assert all(s["entity"].startswith("cartservice") for s in health["signals"])
    missing = await data(mcp, "get_service_health", service="nosuchservice", namespace=NS)
    assert missing["signals"] == [] and "get_topology" in missing["note"]


async def test_query_metrics_instant_range_and_guardrails(mcp: McpClient[Any]) -> None:
    instant = await data(
        mcp, "query_metrics", promql='kube_deployment_spec_replicas{deployment="cartservice"}'
    )
    assert instant["kind"] == "instant"
    assert instant["series"][0]["points"][0][1] >= 1
    ranged = await data(
        mcp, "query_metrics", promql="sum(kube_deployment_spec_replicas)", start="-30m", step="1m"
    )
    assert ranged["kind"] == "range" and 25 <= len(ranged["series"][0]["points"]) <= 31
    many = await data(mcp, "query_metrics", promql='{__name__=~".+"}')
    assert len(many["series"]) == 50 and "aggregate" in many["truncated"]
    with pytest.raises(ToolError, match=r"Prometheus rejected the PromQL: .*parse error"):
        await mcp.call_tool("query_metrics", {"promql": "sum(rate(x[5m]"})
    with pytest.raises(ToolError, match=r"the limit is 7\.0d"):
        await mcp.call_tool("query_metrics", {"promql": "up", "start": "-30d"})
    with pytest.raises(ToolError, match="use step '4s' or more"):
        await mcp.call_tool("query_metrics", {"promql": "up", "start": "-1h", "step": "1s"})
    with pytest.raises(ToolError, match="is not a time; write 'now'"):
        await mcp.call_tool("query_metrics", {"promql": "up", "start": "yesterday"})


async def test_workload_events_and_logs_from_the_cluster(mcp: McpClient[Any]) -> None:
    desc = await data(mcp, "describe_workload", namespace=NS, name="cartservice")
    assert desc["deployment"]["name"] == "cartservice"
    assert desc["pods"] and all(p["name"].startswith("cartservice-") for p in desc["pods"])
    events = await data(mcp, "get_events", namespace=NS, limit=5)
    assert len(events) <= 5
    pod = desc["pods"][0]["name"]
    logs = await data(mcp, "get_pod_logs", namespace=NS, pod=pod, tail_lines=20, max_bytes=512)
    assert len(logs["log"].encode()) <= 512
    with pytest.raises(ToolError, match="no Deployment 'ghost' in namespace 'boutique'"):
        await mcp.call_tool("describe_workload", {"namespace": NS, "name": "ghost"})
    with pytest.raises(ToolError, match="is not a Kubernetes name"):
        await mcp.call_tool("get_events", {"namespace": "Bad Namespace!"})


async def test_plot_metric_is_a_png_with_the_window_shaded(mcp: McpClient[Any]) -> None:
    result = await mcp.call_tool(
        "plot_metric",
        {
            "promql": 'sum(rate(istio_requests_total{destination_workload="cartservice"}[1m]))',
            "start": "-60m",
            "shade_start": "-20m",
            "shade_end": "-10m",
        },
    )
    image = next(c for c in result.content if isinstance(c, ImageContent))
    caption = next(c for c in result.content if isinstance(c, TextContent)).text
    assert image.mime_type == "image/png"
    pixels = np.asarray(PILImage.open(io.BytesIO(base64.b64decode(image.data))).convert("RGB"))
    assert pixels.shape[:2] == (360, 800)
    # The shaded band (the chart module's shade at 30 % over white) spans -20m..-10m of the
    # last hour: a sixth of the plot's width, in the right part of it.
    shade = np.all(np.abs(pixels.astype(int) - (255, 233, 202)) <= 3, axis=2)
    columns = np.flatnonzero(shade.sum(axis=0) > 100)
    assert 0.10 < len(columns) / pixels.shape[1] < 0.20, len(columns)
    assert columns.min() > pixels.shape[1] * 0.5
    assert "shaded:" in caption and "(UTC)" in caption


async def test_playbooks_and_policy(mcp: McpClient[Any]) -> None:
    books = await data(mcp, "list_playbooks")
    assert {"restart-deployment", "rollback-deployment"} <= {b["id"] for b in books}
    explained = await data(
        mcp, "explain_policy", action="k8s.rollout_restart", name="cartservice", namespace=NS
    )
    assert explained["decision"]["allowed"] is True
    assert explained["decision"]["requires_approval"] is True
    assert explained["you_may_approve"] is True  # in-memory: the local user, alice
    denied = await data(mcp, "explain_policy", action="k8s.drain", name="node-a")
    assert denied["decision"]["allowed"] is False
    with pytest.raises(ToolError, match=r"action must be one of k8s\.cordon"):
        await mcp.call_tool("explain_policy", {"action": "kubectl delete", "name": "x"})


async def test_playbook_resources(mcp: McpClient[Any]) -> None:
    contents = await mcp.read_resource("playbook://restart-deployment")
    assert '"id": "restart-deployment"' in contents[0].text  # type: ignore[union-attr]
    listing = await mcp.read_resource("playbooks://all")
    assert "rollback-deployment" in listing[0].text  # type: ignore[union-attr]


async def test_topology_gives_each_edge_both_sides_and_a_verdict(mcp: McpClient[Any]) -> None:
    topo = await data(mcp, "get_topology", namespace=NS, window="1m")
    edges = {(e["from"], e["to"]): e for e in topo["edges"]}
    cart = edges[("frontend", "cartservice")]
    # The healthy lab: what frontend waited is what cartservice spent (no wire fault).
    assert cart["verdict"] == "ok"
    assert cart["calls_per_s"] > 0
    assert cart["client_ms"]["now"] > 0 and cart["server_ms"]["now"] > 0
    assert abs(cart["client_ms"]["now"] - cart["server_ms"]["now"]) < 0.5 * cart["client_ms"]["now"]
    assert 'reporter="source"' in cart["query"]
    assert "mean per" in topo["latency"]


async def test_plot_metric_draws_both_sides_of_an_edge(mcp: McpClient[Any]) -> None:
    result = await mcp.call_tool(
        "plot_metric", {"edge": "frontend->cartservice", "namespace": NS, "start": "-30m"}
    )
    caption = next(c for c in result.content if isinstance(c, TextContent)).text
    assert any(isinstance(c, ImageContent) for c in result.content)
    # Both sides of the edge, each its own line: what the caller's sidecar measured beside the
    # callee's.
    assert 'reporter="source"' in caption and 'reporter="destination"' in caption
    assert '"side", "client"' in caption and '"side", "server"' in caption
    with pytest.raises(ToolError, match="is not 'caller->callee'"):
        await mcp.call_tool("plot_metric", {"edge": "frontend", "namespace": NS})
