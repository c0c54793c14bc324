"""The read tools against the lab: a real Prometheus scraping the simulated shop and the lab
Kubernetes API, through the in-memory fastmcp client."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastmcp import Client as McpClient
from fastmcp.exceptions import ToolError
from mcp.types import ImageContent, TextContent

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
    width, height, pixels = decode_png(image.data)
    assert (width, height) == (640, 320)
    # The shaded band covers -20m..-10m of the last hour: 2/3 to 5/6 of the plot's width.
    shade = (255, 228, 196)

    def shaded(x: int) -> int:
        return sum(pixels[y][x] == shade for y in range(21, 300))

    assert shaded(20 + int(600 * 0.75)) > 200
    assert shaded(20 + int(600 * 0.3)) == 0
    assert shaded(20 + int(600 * 0.95)) == 0
    assert any(px == (31, 119, 180) for line in pixels for px in line)  # the series
    assert "shaded:" in caption and "y:" in caption


def decode_png(b64: str) -> tuple[int, int, list[list[tuple[int, int, int]]]]:
    import base64

    raw = base64.b64decode(b64)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos : pos + 4])
        kind, body = raw[pos + 4 : pos + 8], raw[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    flat = zlib.decompress(idat)
    stride = width * 3 + 1
    rows = []
    for y in range(height):
        line = flat[y * stride + 1 : (y + 1) * stride]
        rows.append([tuple(line[i : i + 3]) for i in range(0, len(line), 3)])
    return width, height, rows  # type: ignore[return-value]


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
    assert "'side': 'client'" in caption and "'side': 'server'" in caption
    with pytest.raises(ToolError, match="is not 'caller->callee'"):
        await mcp.call_tool("plot_metric", {"edge": "frontend", "namespace": NS})
