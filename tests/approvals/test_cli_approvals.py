"""`aiops incidents|approve|reject` against the real dev server, as a person runs them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.incident import IncidentActivities
from aiops.domain import IncidentReport, IncidentStatus
from tests.incident_fixtures import pending, start
from tests.keys import write_key
from tests.servers import MetricsTarget
from workflows import IncidentWorkflow

AIOPS = str(Path(sys.executable).parent / "aiops")


async def aiops(
    client: Client, task_queue: str, *args: str, identity: str = "alice"
) -> tuple[int, str, str]:
    """`aiops ARGS` as `identity` runs it: with their own key file (tests/keys.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env["AIOPS_TEMPORAL__ADDRESS"] = client.service_client.config.target_host
    with tempfile.TemporaryDirectory(prefix="aiops-keys-") as keys:
        env["AIOPS_SIGNING__CLI_KEY"] = str(write_key(identity, Path(keys) / "approver.key"))
        proc = await asyncio.create_subprocess_exec(
            AIOPS, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def handle(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> WorkflowHandle[IncidentWorkflow, IncidentReport]:
    h = await start(temporal_client, task_queue, rules, approvals=2)
    await pending(h)
    return h


async def test_show_then_approve_by_two_people(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    handle: WorkflowHandle[IncidentWorkflow, IncidentReport],
) -> None:
    code, out, _ = await aiops(temporal_client, task_queue, "incidents", "list")
    assert code == 0
    assert handle.id in out
    code, out, _ = await aiops(temporal_client, task_queue, "incidents", "show", handle.id)
    shown = json.loads(out)
    assert shown["status"] == "awaiting_approval"
    plan_hash = shown["pending_approval"]["plan_hash"]

    code, out, err = await aiops(
        temporal_client, task_queue, "approve", handle.id, "--plan-hash", plan_hash
    )
    assert code == 0, err
    assert "1 more approval(s) needed" in out
    assert await handle.query(IncidentWorkflow.actions) == []
    code, out, err = await aiops(temporal_client, task_queue, "approve", handle.id, identity="bob")
    assert code == 0, err
    assert "it runs now" in out
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED
    assert [d.identity for d in report.decisions] == ["alice", "bob"]
    assert all(d.channel == "cli" for d in report.decisions)


async def test_refusals_are_one_line_and_change_nothing(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    handle: WorkflowHandle[IncidentWorkflow, IncidentReport],
) -> None:
    code, _, err = await aiops(
        temporal_client, task_queue, "approve", handle.id, identity="mallory"
    )
    assert code == 1
    assert "refused: CLI key sha256:" in err and "is not mapped to a person" in err
    code, _, err = await aiops(
        temporal_client, task_queue, "approve", handle.id, "--plan-hash", "deadbeefdeadbeef"
    )
    assert code == 1
    assert "does not match the pending plan" in err
    code, _, err = await aiops(temporal_client, task_queue, "reject", handle.id)
    assert code == 2
    assert "--reason" in err
    code, _, err = await aiops(temporal_client, task_queue, "approve", "incident-unknown")
    assert code == 1
    assert "no incident 'incident-unknown'" in err
    assert (await pending(handle)).approved_by == []
    assert await handle.query(IncidentWorkflow.actions) == []

    code, _, err = await aiops(
        temporal_client,
        task_queue,
        "reject",
        handle.id,
        "--reason",
        "not during the sale",
        identity="bob",
    )
    assert code == 0, err
    report = await handle.result()
    assert report.status is IncidentStatus.REJECTED
    assert report.decisions[-1].reason == "not during the sale"
    code, _, err = await aiops(temporal_client, task_queue, "approve", handle.id)
    assert code == 1
    assert "already closed (rejected); nothing to decide" in err
