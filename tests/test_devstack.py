"""`aiops dev` as a person runs it: the UI answers, the worker runs incidents, the MCP server
and the Alertmanager webhook answer, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from fastmcp import Client as McpClient
from temporalio.client import Client

from aiops.config import Settings
from aiops.domain import Incident
from aiops.incidents.client import IncidentClient
from aiops.incidents.intake import search_attributes_ready
from aiops.incidents.rules import load_rules
from tests.servers import free_port, wait_until

AIOPS = str(Path(sys.executable).parent / "aiops")


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def test_dev_stack_serves_ui_worker_and_mcp_and_stops_cleanly(tmp_path: Path) -> None:
    port, ui_port, mcp_port, am_port = free_port(), free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(
        {
            "AIOPS_STATE_DIR": str(tmp_path / "state"),
            "AIOPS_DEV_SERVER__PORT": str(port),
            "AIOPS_DEV_SERVER__UI_PORT": str(ui_port),
            "AIOPS_MCP__PORT": str(mcp_port),
            "AIOPS_ALERTMANAGER__PORT": str(am_port),
            "FASTMCP_CHECK_FOR_UPDATES": "off",
        }
    )
    proc = subprocess.Popen(
        [AIOPS, "dev"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: _http_ok(f"http://127.0.0.1:{ui_port}/"), 90, "the Temporal UI")
        assert (tmp_path / "state" / "temporal.db").exists(), "SQLite state lives in state_dir"

        from temporalio.contrib.pydantic import pydantic_data_converter

        client = await Client.connect(f"127.0.0.1:{port}", data_converter=pydantic_data_converter)
        incident = Incident(
            id=f"incident-{uuid.uuid4().hex[:8]}",
            fingerprint="a" * 16,
            namespace="boutique",
            opened_at=datetime.now(UTC),
        )
        rules = load_rules(Settings())
        assert await search_attributes_ready(client), "aiops dev registers them"
        handle = await IncidentClient(client).open_or_join(incident, rules, index=True)
        # No anomalies: nothing to act on. The incident is seconds old, so the workflow looks
        # once more after IncidentInput.settle_s (30 s) before it escalates.
        report = await asyncio.wait_for(handle.result(), 90)
        assert report.status.value == "escalated"
        assert any("looking again" in e.what for e in report.audit), report.audit

        wait_until(lambda: _port_open(mcp_port), 30, "the MCP server")
        async with McpClient(f"http://127.0.0.1:{mcp_port}/mcp") as mcp:
            result = await mcp.call_tool("get_incident", {"incident_id": incident.id})
            view = result.structured_content
            assert view is not None
            assert view["workflow"] == "COMPLETED"
            assert view["status"] == "escalated"
            assert view["temporal_ui"].endswith(f"/workflows/{incident.id}")

        resolved = {
            "version": "4",
            "status": "resolved",
            "alerts": [
                {
                    "status": "resolved",
                    "labels": {"alertname": "X", "namespace": "boutique"},
                    "startsAt": "2026-11-24T12:00:00Z",
                }
            ],
        }
        answer = httpx.post(f"http://127.0.0.1:{am_port}/alertmanager", json=resolved)
        assert answer.json() == {"accepted": 0, "ignored_resolved": 1}

        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("temporal" in " ".join(c.cmdline()) for c in children)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{ui_port}" in out
    assert f"Alertmanager webhook http://127.0.0.1:{am_port}/alertmanager" in out
    assert "Traceback" not in err
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, (
            f"{child.pid} survived Ctrl-C"
        )


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_lab_evaluation_takes_ports_of_its_own_even_when_the_usual_ones_are_free() -> None:
    # Two evaluations started a minute apart once shared one Temporal: the second found 7233
    # free (the first's server was still starting), its own server then failed to bind, and its
    # wait connected to the first's. Fresh ports from the system cannot meet that way.
    from aiops.devstack import with_free_ports

    usual = Settings(dev_server={"port": free_port(), "ui_port": free_port()})
    a, _ = with_free_ports(usual, mcp=False, fresh=True)
    b, _ = with_free_ports(usual, mcp=False, fresh=True)
    mine = {a.dev_server.port, a.dev_server.ui_port}
    assert usual.dev_server.port not in mine and usual.dev_server.ui_port not in mine
    assert len(mine | {b.dev_server.port, b.dev_server.ui_port}) == 4
