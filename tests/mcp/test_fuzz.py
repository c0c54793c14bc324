"""Fuzz every tool's arguments (hypothesis): each call either answers or raises a ToolError a
person can act on; no traceback, no internal exception text, no masked "Error calling tool", no
secret (bearer tokens of the MCP clients or of Prometheus) in any answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from aiops_lab.runner import LabInfo
from fastmcp import Client as McpClient
from fastmcp.exceptions import ToolError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from aiops.config import Settings
from aiops.mcp.server import create_server
from tests.mcp.conftest import TOKENS, make_settings

T = TypeVar("T")
PROM_SECRET = "prom-secret-9f8e7d6c5b4a"
FORBIDDEN = (
    "Traceback",
    'File "',
    "Error calling tool",
    "errors.pydantic.dev",
    "KeyError",
    "AttributeError",
    "TypeError:",
    "NoneType",
    "object has no attribute",
    PROM_SECRET,
    *TOKENS,
)

PLAUSIBLE = st.sampled_from(
    [
        "boutique",
        "cartservice",
        "frontend",
        "now",
        "-1h",
        "-30d",
        "1m",
        "0s",
        "up",
        "sum(rate(istio_requests_total[1m]))",
        "rate(",
        "k8s.scale",
        "k8s.drain",
        "incident-x",
        "incident-" + "f" * 12,
        "2026-11-24T12:00:00Z",
        "2999-01-01T00:00:00Z",
        "Running",
        "high",
        "deadbeefdeadbeef",
        "",
        " ",
        "../../etc/passwd",
        "a" * 300,
        '{__name__=~".+"}',
        "x' OR 1=1",
        "\u0000",
        "é漢字",
    ]
)
SCALAR = st.one_of(
    PLAUSIBLE,
    st.text(max_size=40),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
VALUE = st.one_of(
    SCALAR, st.lists(SCALAR, max_size=3), st.dictionaries(st.text(max_size=8), SCALAR, max_size=3)
)


class LoopThread:
    """A loop of its own for the MCP client, so hypothesis can drive it from a sync test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def fuzz_settings(temporal_env: WorkflowEnvironment, lab: LabInfo, policies_dir: Any) -> Settings:
    s = make_settings(
        temporal=temporal_env.client.service_client.config.target_host,
        prometheus=lab.prometheus_url,
        kubeconfig=lab.kubeconfig,
        policies=policies_dir,
        write=True,
        local_user="mallory",
    )
    s.prometheus.bearer_token = SecretStr(PROM_SECRET)
    return s


@pytest.fixture(scope="module")
def client(fuzz_settings: Settings) -> Iterator[tuple[LoopThread, McpClient[Any], dict[str, Any]]]:
    lt = LoopThread()
    mcp: McpClient[Any] = McpClient(create_server(fuzz_settings))
    lt.run(mcp.__aenter__())  # type: ignore[no-untyped-call]
    schemas = {t.name: t.input_schema for t in lt.run(mcp.list_tools())}
    try:
        yield lt, mcp, schemas
    finally:
        lt.run(mcp.__aexit__(None, None, None))  # type: ignore[no-untyped-call]
        lt.close()


TOOLS = [
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
    "approve_remediation",
    "reject_remediation",
    "propose_remediation",
]


def test_every_tool_is_fuzzed(client: tuple[LoopThread, McpClient[Any], dict[str, Any]]) -> None:
    assert set(TOOLS) == set(client[2])


@pytest.mark.parametrize("tool", TOOLS)
def test_bad_arguments_get_actionable_tool_errors(
    tool: str,
    client: tuple[LoopThread, McpClient[Any], dict[str, Any]],
) -> None:
    lt, mcp, schemas = client
    params = list(schemas[tool].get("properties", {}))
    names = (
        st.sampled_from([*params, "identity", "unexpected"])
        if params
        else st.sampled_from(["identity", "unexpected"])
    )
    args_strategy = st.dictionaries(names, VALUE, max_size=len(params) + 1)

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(args=args_strategy)
    def check(args: dict[str, Any]) -> None:
        try:
            result = lt.run(mcp.call_tool(tool, args))
            text = "\n".join(getattr(c, "text", "") for c in result.content)
        except ToolError as exc:
            text = str(exc)
            assert len(text) < 2000, text
            assert any(
                word in text
                for word in (
                    "must",
                    "give",
                    "not ",
                    "no ",
                    "refused",
                    "limit",
                    "write",
                    "needs",
                    "bad",
                    "unreachable",
                    "rejected",
                    "could not",
                    "missing",
                    "between",
                    "keep",
                )
            ), text
        for word in FORBIDDEN:
            assert word not in text, (word, text[:500])

    check()
