"""What a person sees of the profiles: `aiops doctor` and `aiops config show` against a
Prometheus that holds every profile's families but no node_exporter."""

from __future__ import annotations

import json
from pathlib import Path

from fastmcp import Client as McpClient

from aiops.cli import _live_profiles
from aiops.config import ProfileSettings, PrometheusSettings, Settings
from aiops.integrations.discovery import ProfileDiscovery
from aiops.mcp.server import create_server
from aiops.profiles.report import doctor_lines
from tests.profiles.conftest import States
from tests.servers import free_port
from tests.test_cli import run


def test_doctor_lists_the_profiles_found_the_signals_live_and_what_others_want(
    states: States, tmp_path: Path
) -> None:
    result = run(
        "doctor",
        env={
            "AIOPS_TEMPORAL__ADDRESS": f"127.0.0.1:{free_port()}",
            "AIOPS_PROMETHEUS__URL": states.url,
            "HOME": str(tmp_path),
        },
    )
    out = result.stdout
    assert (
        "ok   profiles    found in Prometheus: base, istio, linkerd, otel-semconv, "
        "otel-spanmetrics, ingress-nginx" in out
    )
    assert "request_rate, error_ratio, latency_p99 (istio + linkerd + otel-semconv" in out
    assert "WARN signals     node_cpu_busy cannot run: base needs node_cpu_seconds_total" in out
    assert "no request metrics" not in out
    assert result.returncode == 1  # Temporal and Kubernetes are down


def test_doctor_says_what_aiops_cannot_see_without_request_metrics(states: States) -> None:
    """Only the base profile enabled: what a cluster without a mesh or OpenTelemetry has."""
    settings = ProfileSettings(enabled=["base"])
    rows = doctor_lines(ProfileDiscovery(settings, states.prometheus()).current())
    assert rows[0] == ("ok", "profiles", "found in Prometheus: base")
    status, what, line = rows[1]
    assert (status, what) == ("WARN", "requests")
    assert line.startswith("no request metrics for request_rate, error_ratio, latency_p99")


def test_config_show_carries_what_discovery_found(states: States) -> None:
    result = run("config", "show", env={"AIOPS_PROMETHEUS__URL": states.url})
    assert result.returncode == 0, result.stderr
    live = json.loads(result.stdout)["profiles"]["live"]
    assert live["discovered"] is True
    assert "istio" in live["profiles_found"]
    assert live["signals"]["latency_p99"]["unit"] == "s"
    assert live["cannot_run"]["node_cpu_busy"] == ["base needs node_cpu_seconds_total"]
    down = Settings(prometheus=PrometheusSettings(url=f"http://127.0.0.1:{free_port()}"))
    assert "unreachable" in str(_live_profiles(down)["error"])


async def test_the_mcp_server_lists_the_signals_live(states: States) -> None:
    settings = Settings(prometheus=PrometheusSettings(url=states.url))
    async with McpClient(create_server(settings)) as mcp:
        result = await mcp.call_tool("list_signals", {})
    answer = result.structured_content or {}
    assert "linkerd" in answer["profiles_found"]
    assert answer["signals"]["edge_request_rate"]["profiles"] == [
        "istio",
        "linkerd",
        "otel-spanmetrics",
    ]
    assert answer["cannot_run"]["node_memory_available_ratio"] == [
        "base needs node_memory_MemAvailable_bytes and node_memory_MemTotal_bytes"
    ]
    assert answer["checked_at"]
