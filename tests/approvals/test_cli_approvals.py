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
from aiops.cli import main
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


def run_aiops(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, **env: str
) -> tuple[int, str, str]:
    """`aiops ARGS` in this process (the commands here need no server)."""
    for name in [k for k in os.environ if k.startswith("AIOPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AIOPS_TEMPORAL__ADDRESS", "127.0.0.1:1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_person_makes_a_key_and_the_cli_guards_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "conf" / "aiops" / "approver.key"
    code, made, _ = run_aiops(
        capsys, monkeypatch, "key", "generate", AIOPS_SIGNING__CLI_KEY=str(key)
    )
    assert code == 0
    assert key.stat().st_mode & 0o777 == 0o600
    public = next(line.split()[-1] for line in made.splitlines() if "public key" in line)
    assert public.startswith("ed25519:") and "approvals.identities.<you>.cli" in made
    _, shown, _ = run_aiops(capsys, monkeypatch, "key", "show", "--file", str(key))
    assert public in shown and "sha256:" in shown
    code, _, err = run_aiops(capsys, monkeypatch, "key", "generate", "--file", str(key))
    assert code == 1 and "already holds a key" in err
    assert public in err, "the key is kept"

    key.chmod(0o644)  # readable by others: anyone could decide as its holder
    code, _, err = run_aiops(
        capsys, monkeypatch, "approve", "incident-x", AIOPS_SIGNING__CLI_KEY=str(key)
    )
    assert code == 1
    assert "can be read by others" in err and f"chmod 600 {key}" in err
    code, _, err = run_aiops(
        capsys, monkeypatch, "approve", "x", AIOPS_SIGNING__CLI_KEY=str(tmp_path / "none")
    )
    assert code == 1 and "run `aiops key generate" in err


def test_the_cli_cannot_name_whom_it_acts_for(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_aiops(capsys, monkeypatch, "approve", "x", AIOPS_CLI_IDENTITY="alice")
    assert code == 2
    assert "AIOPS_CLI_IDENTITY" in err and "signs with your own key" in err
