"""Incidents over MCP against the real Temporal dev server and a worker: reading an incident
that awaits approval, and deciding on it over streamable HTTP with bearer tokens through the
official `mcp` SDK client (people, not arguments, decide)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from fastmcp import Client as McpClient
from fastmcp.exceptions import ToolError
from fastmcp.utilities.tests import run_server_async
from mcp import Client as SdkClient
from mcp.client.streamable_http import streamable_http_client
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.incident import IncidentActivities
from aiops.activities.kill_switch import KillSwitchActivities
from aiops.activities.notify import NotifyActivities
from aiops.config import PrometheusSettings, Settings
from aiops.domain import Anomaly, Direction, IncidentReport, IncidentStatus
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.prometheus import Prometheus
from aiops.mcp.server import create_server
from aiops.policy.loader import parse_policy
from aiops.policy.models import Policy
from aiops.worker import build_worker
from tests.incident_fixtures import FixedInvestigator, pending, start
from tests.mcp.conftest import ALICE, CAROL, VIEWER, make_settings, mcp_policy_yaml
from tests.servers import MetricsTarget, PrometheusServer
from workflows import IncidentWorkflow
from workflows.incident import AnomalyBatch


@pytest.fixture
async def acts(
    temporal_client: Client,
    task_queue: str,
    executor: KubernetesExecutor,
    prometheus: PrometheusServer,
) -> AsyncIterator[IncidentActivities]:
    activities = IncidentActivities(
        investigator=FixedInvestigator(),
        executor=executor,
        prometheus=Prometheus(PrometheusSettings(url=prometheus.url)),
        verify_poll_s=0.5,
    )
    switch = KillSwitchActivities(lambda: Policy())
    silent = NotifyActivities(None)
    async with build_worker(
        temporal_client, task_queue, [*activities.all(), *switch.all(), *silent.all()]
    ):
        yield activities


@pytest.fixture
async def handle(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> WorkflowHandle[IncidentWorkflow, IncidentReport]:
    mcp_rules = RulesSnapshot(policy=parse_policy(mcp_policy_yaml()), playbooks=rules.playbooks)
    h = await start(temporal_client, task_queue, mcp_rules)
    await pending(h)
    return h


def settings_for(
    env: WorkflowEnvironment,
    prometheus: PrometheusServer,
    policies: Path,
    *,
    write: bool = True,
    local_user: str | None = "alice",
) -> Settings:
    return make_settings(
        temporal=env.client.service_client.config.target_host,
        prometheus=prometheus.url,
        policies=policies,
        write=write,
        local_user=local_user,
    )


def sdk_client(url: str, token: str | None) -> SdkClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return SdkClient(
        streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=30))
    )


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def test_read_an_incident_awaiting_approval(
    temporal_env: WorkflowEnvironment,
    prometheus: PrometheusServer,
    policies_dir: Path,
    handle: WorkflowHandle[IncidentWorkflow, IncidentReport],
) -> None:
    settings = settings_for(temporal_env, prometheus, policies_dir, write=False)
    async with McpClient(create_server(settings)) as mcp:
        listed = (await mcp.call_tool("list_incidents", {"status": "Running"})).structured_content[
            "result"
        ]
        assert handle.id in [i["id"] for i in listed]
        inc = (await mcp.call_tool("get_incident", {"incident_id": handle.id})).structured_content
        assert inc["status"] == "awaiting_approval"
        assert inc["service"] == "cartservice"
        assert inc["rca"]["summary"] == "cartservice leaks memory"
        assert inc["plan"]["playbook_id"] == "restart-deployment"
        assert inc["policy_decision"]["requires_approval"] is True
        waiting = inc["awaiting_approval"]
        assert waiting["plan_hash"] == inc["plan"]["plan_hash"]
        assert waiting["approvers"] == ["alice", "bob"]
        assert waiting["dry_run"]
        later = Anomaly(
            signal="restarts",
            series={"workload": "cartservice"},
            query="kube_pod_container_status_restarts_total",
            start=datetime.now(UTC),
            score=0.8,
            direction=Direction.UP,
        )
        for _ in range(2):  # a repeat joins once
            await handle.signal("add_anomalies", AnomalyBatch(anomalies=[later]))
        anomalies = (
            await mcp.call_tool("list_anomalies", {"service": "cartservice"})
        ).structured_content["result"]
        ours = sorted(a["signal"] for a in anomalies if a["incident_id"] == handle.id)
        assert ours == ["memory_vs_limit", "restarts"]
        resource = await mcp.read_resource(f"incident://{handle.id}")
        assert json.loads(resource[0].text)["plan"]["plan_hash"] == waiting["plan_hash"]
        trail = (
            await mcp.call_tool("get_audit_trail", {"incident_id": handle.id})
        ).structured_content["result"]
        whats = [row["what"] for row in trail]
        assert any(w.startswith("root cause: cartservice leaks memory") for w in whats)
        assert any(w.startswith("approval requested") for w in whats)
        assert [row["at"] for row in trail] == sorted(row["at"] for row in trail)
        names = {t.name for t in await mcp.list_tools()}
        assert "approve_remediation" not in names  # write tools are off unless enabled


async def test_approve_over_http_as_the_token_holder(
    temporal_env: WorkflowEnvironment,
    prometheus: PrometheusServer,
    policies_dir: Path,
    handle: WorkflowHandle[IncidentWorkflow, IncidentReport],
) -> None:
    settings = settings_for(temporal_env, prometheus, policies_dir, local_user=None)
    request = await pending(handle)
    async with run_server_async(create_server(settings)) as url:
        async with httpx.AsyncClient() as http:
            no_token = await http.post(
                url,
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Accept": "application/json, text/event-stream"},
            )
        assert no_token.status_code == 401
        async with sdk_client(url, VIEWER) as viewer:
            tools = {t.name: t for t in (await viewer.list_tools()).tools}
            assert tools["approve_remediation"].annotations.destructive_hint is True  # type: ignore[union-attr]
            refused = await viewer.call_tool("approve_remediation", {"incident_id": handle.id})
            assert refused.is_error
            assert "viewer@example.com" in text_of(refused)
            assert "does not have the approver role" in text_of(refused)
            # The identity is never an argument: a claimed one is refused as unknown.
            claimed = await viewer.call_tool(
                "approve_remediation", {"incident_id": handle.id, "identity": "alice"}
            )
            assert claimed.is_error and "identity: not an argument" in text_of(claimed)
        async with sdk_client(url, CAROL) as carol:
            refused = await carol.call_tool("approve_remediation", {"incident_id": handle.id})
            assert "policy identity carol, role viewer" in text_of(refused)
        assert (await pending(handle)).approved_by == []
        async with sdk_client(url, ALICE) as alice:
            stale = await alice.call_tool(
                "approve_remediation", {"incident_id": handle.id, "plan_hash": "0123456789abcdef"}
            )
            assert "does not match the pending plan" in text_of(stale)
            done = await alice.call_tool(
                "approve_remediation", {"incident_id": handle.id, "plan_hash": request.plan_hash}
            )
            assert not done.is_error, text_of(done)
            assert "it runs now" in text_of(done)
            report = await handle.result()
            assert report.status is IncidentStatus.RESOLVED
            assert [(d.identity, d.channel) for d in report.decisions] == [("alice", "mcp")]
            trail = await alice.call_tool("get_audit_trail", {"incident_id": handle.id})
            assert f"approved plan {request.plan_hash} via mcp" in text_of(trail)
            again = await alice.call_tool("approve_remediation", {"incident_id": handle.id})
            assert "already closed (resolved); nothing to decide" in text_of(again)


async def test_reject_over_stdio_identity_needs_a_reason(
    temporal_env: WorkflowEnvironment,
    prometheus: PrometheusServer,
    policies_dir: Path,
    handle: WorkflowHandle[IncidentWorkflow, IncidentReport],
) -> None:
    settings = settings_for(temporal_env, prometheus, policies_dir, local_user="bob")
    async with McpClient(create_server(settings)) as mcp:
        with pytest.raises(ToolError, match="give a reason"):
            await mcp.call_tool("reject_remediation", {"incident_id": handle.id, "reason": " "})
        await mcp.call_tool(
            "reject_remediation", {"incident_id": handle.id, "reason": "not during the sale"}
        )
    report = await handle.result()
    assert report.status is IncidentStatus.REJECTED
    assert report.decisions[-1].identity == "bob"
    assert report.decisions[-1].reason == "not during the sale"


async def test_propose_opens_an_incident_that_policy_gates(
    temporal_env: WorkflowEnvironment,
    prometheus: PrometheusServer,
    policies_dir: Path,
    task_queue: str,
    acts: IncidentActivities,
    healthy_cart: MetricsTarget,
    temporal_client: Client,
) -> None:
    viewer = settings_for(temporal_env, prometheus, policies_dir, local_user="mallory")
    async with McpClient(create_server(viewer)) as mcp:
        with pytest.raises(ToolError, match="does not have the approver role"):
            await mcp.call_tool(
                "propose_remediation",
                {"service": "cartservice", "namespace": "boutique", "summary": "slow"},
            )
    settings = settings_for(temporal_env, prometheus, policies_dir)
    settings.temporal.task_queue = task_queue
    # Proposal ids carry the minute: keep both proposals inside one minute.
    while datetime.now(UTC).second > 35:
        await asyncio.sleep(1)
    async with McpClient(create_server(settings)) as mcp:
        opened = (
            await mcp.call_tool(
                "propose_remediation",
                {
                    "service": "cartservice",
                    "namespace": "boutique",
                    "summary": "carts vanish at checkout",
                },
            )
        ).data
        handle = temporal_client.get_workflow_handle(
            opened["incident_id"], result_type=IncidentReport
        )
        await pending(handle)  # type: ignore[arg-type]
        again = (
            await mcp.call_tool(
                "propose_remediation",
                {"service": "cartservice", "namespace": "boutique", "summary": "still"},
            )
        ).data
        assert again["incident_id"] == opened["incident_id"] and "already open" in again["result"]
        inc = (
            await mcp.call_tool("get_incident", {"incident_id": opened["incident_id"]})
        ).structured_content
        assert inc["status"] == "awaiting_approval"  # policy: a person approves, even so
        assert inc["anomalies"][0]["blamed_dimensions"] == [
            "reported by alice: carts vanish at checkout"
        ]
        await mcp.call_tool(
            "reject_remediation", {"incident_id": opened["incident_id"], "reason": "test over"}
        )
    assert (await handle.result()).status is IncidentStatus.REJECTED
