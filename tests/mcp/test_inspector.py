"""The official MCP Inspector CLI (npm @modelcontextprotocol/inspector@0.15.0, Node 20) against
`aiops mcp`, over stdio and over streamable HTTP: it lists the tools and calls a read tool.

The inspector is installed with `npm ci --prefix tests/mcp/inspector` (the session fixture runs
it when node_modules is missing); without npm, or offline, these tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiops_lab.runner import LabInfo

from tests.mcp.conftest import NS, REPO
from tests.servers import free_port

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent / "inspector"
AIOPS = str(Path(sys.executable).parent / "aiops")


@pytest.fixture(scope="session")
def inspector() -> str:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm/node not installed: the MCP Inspector CLI cannot run")
    binary = HERE / "node_modules" / ".bin" / "mcp-inspector"
    if not binary.exists():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not binary.exists():
            pytest.skip(f"npm ci of the MCP Inspector failed: {done.stderr[-300:]}")
    return str(binary)


def aiops_env(lab: LabInfo) -> dict[str, str]:
    return {
        "FASTMCP_CHECK_FOR_UPDATES": "off",
        "AIOPS_PROMETHEUS__URL": lab.prometheus_url,
        "AIOPS_KUBERNETES__KUBECONFIG": lab.kubeconfig,
        "AIOPS_PLAYBOOKS_DIR": str(REPO / "playbooks"),
        "AIOPS_POLICIES_DIR": str(REPO / "policies"),
        "AIOPS_TEMPORAL__ADDRESS": "127.0.0.1:1",
    }


def run_inspector(inspector: str, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    done = subprocess.run(
        [inspector, "--cli", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=env,
        cwd=HERE,
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    out: dict[str, object] = json.loads(done.stdout)
    return out


def tool_names(listing: dict[str, object]) -> set[str]:
    return {t["name"] for t in listing["tools"]}  # type: ignore[attr-defined]


def test_inspector_over_stdio(inspector: str, lab: LabInfo) -> None:
    env_args = [x for k, v in aiops_env(lab).items() for x in ("-e", f"{k}={v}")]
    listing = run_inspector(
        inspector, *env_args, AIOPS, "mcp", "--transport", "stdio", "--method", "tools/list"
    )
    assert {"get_incident", "query_metrics", "plot_metric"} <= tool_names(listing)
    assert "approve_remediation" not in tool_names(listing)
    called = run_inspector(
        inspector,
        *env_args,
        AIOPS,
        "mcp",
        "--transport",
        "stdio",
        "--method",
        "tools/call",
        "--tool-name",
        "list_playbooks",
    )
    assert called.get("isError") is not True
    assert "restart-deployment" in json.dumps(called)


@pytest.fixture
def http_server(lab: LabInfo) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(aiops_env(lab))
    proc = subprocess.Popen(
        [AIOPS, "mcp", "--transport", "http", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


def test_inspector_over_http(inspector: str, http_server: str) -> None:
    listing = run_inspector(inspector, http_server, "--transport", "http", "--method", "tools/list")
    assert {"list_playbooks", "get_service_health"} <= tool_names(listing)
    called = run_inspector(
        inspector,
        http_server,
        "--transport",
        "http",
        "--method",
        "tools/call",
        "--tool-name",
        "get_topology",
        "--tool-arg",
        f"namespace={NS}",
        "--tool-arg",
        "window=1m",
    )
    assert called.get("isError") is not True
    assert "cartservice" in json.dumps(called)
