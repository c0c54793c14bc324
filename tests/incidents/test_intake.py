"""The intake on the real dev server: each new incident gets the rules as their files say then
(the version in its audit trail), times from outside are clamped to now with a note, an alert
delivered again after its incident closed opens no second incident, and the kill switch is read
from the policy file as it is now."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client

from aiops.activities.incident import IncidentActivities
from aiops.activities.kill_switch import KillSwitchActivities, KillSwitchInput
from aiops.config import AlertmanagerSettings, Settings, TemporalSettings
from aiops.domain import IncidentStatus
from aiops.incidents import IncidentClient
from aiops.incidents.intake import AnomalyIntake
from aiops.incidents.rules import RulesSource
from aiops.policy.loader import parse_policy
from aiops.webhook import receiver_app
from tests.incident_fixtures import pending, policy_yaml, reject, workload_anomaly
from tests.integrations.test_alertmanager import alert, payload
from tests.servers import MetricsTarget, served
from tests.test_webhook import incident_id_of
from workflows import IncidentWorkflow

TOKEN = "intake-test-token"


@pytest.fixture
async def webhook(
    temporal_client: Client, task_queue: str, rules_files: RulesSource
) -> AsyncIterator[str]:
    settings = Settings(
        temporal=TemporalSettings(task_queue=task_queue),
        alertmanager=AlertmanagerSettings(tokens=[SecretStr(TOKEN)]),
    )
    async with served(await receiver_app(settings, temporal_client, rules_files)) as url:
        yield f"{url}/alertmanager"


async def deliver(url: str, *alerts: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            url, json=payload(*alerts), headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert answer.status_code == 200, answer.text


def firing(namespace: str, starts_at: str = "2026-11-24T12:00:00Z") -> dict[str, Any]:
    return {**alert(namespace=namespace, workload="cartservice"), "startsAt": starts_at}


async def runs_of(client: Client, incident_id: str) -> int:
    return len(await IncidentClient(client).find(query=f"WorkflowId = '{incident_id}'"))


async def test_an_alert_delivered_again_after_its_incident_closed_opens_nothing(
    temporal_client: Client,
    webhook: str,
    acts: IncidentActivities,
    healthy_cart: MetricsTarget,
) -> None:
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    incidents = IncidentClient(temporal_client)
    await deliver(webhook, firing(namespace))
    handle = incidents.handle(incident_id_of(namespace))
    await reject(handle, "bob", await pending(handle), reason="known, being fixed by hand")
    assert (await handle.result()).status is IncidentStatus.REJECTED

    # Alertmanager re-sends the still-firing alert every repeat interval.
    for _ in range(2):
        await deliver(webhook, firing(namespace))
    await asyncio.sleep(1)
    assert not await incidents.running(handle.id), "no second incident for the same alert"
    # The same alert firing again later (a new episode, a new startsAt) is news.
    await deliver(webhook, firing(namespace, datetime.now(UTC).isoformat()))
    assert await incidents.running(handle.id)
    for _ in range(40):  # visibility catches up with the new run
        if await runs_of(temporal_client, handle.id) == 2:
            break
        await asyncio.sleep(0.25)
    assert await runs_of(temporal_client, handle.id) == 2
    await incidents.handle(handle.id).terminate("test done")


async def test_an_alert_from_the_future_is_counted_from_now_and_says_so(
    temporal_client: Client,
    webhook: str,
    acts: IncidentActivities,
    healthy_cart: MetricsTarget,
) -> None:
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    before = datetime.now(UTC)
    await deliver(webhook, firing(namespace, "9999-12-31T23:59:59Z"))
    handle = IncidentClient(temporal_client).handle(incident_id_of(namespace))
    await pending(handle)  # investigated and planned: nothing overflowed or slept for years
    audit = await handle.query(IncidentWorkflow.audit)
    [note] = [e for e in audit if e.actor == "intake"]
    assert "starting at 9999-12-31T23:59:59+00:00" in note.what
    assert "ahead of this clock: counted from now" in note.what
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [inp] = await temporal_client.data_converter.decode(started.input.payloads[:1])
    assert before <= datetime.fromisoformat(inp["incident"]["opened_at"]) <= datetime.now(UTC)
    await handle.terminate("test done")


async def test_each_new_incident_gets_the_policy_as_its_file_says_then(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules_files: RulesSource,
    healthy_cart: MetricsTarget,
) -> None:
    intake = AnomalyIntake(IncidentClient(temporal_client, task_queue), rules_files)
    policy_file = rules_files.policies_path / "default.yaml"
    first_version = parse_policy(policy_file.read_text()).version()
    [first] = await intake.open_or_join(
        [workload_anomaly("cartservice", f"shop-{uuid.uuid4().hex[:6]}")], index=True
    )
    policy_file.write_text(policy_yaml(approvals=2))  # edited while aiops runs
    second_version = parse_policy(policy_file.read_text()).version()
    [second] = await intake.open_or_join(
        [workload_anomaly("cartservice", f"shop-{uuid.uuid4().hex[:6]}")], index=True
    )
    incidents = IncidentClient(temporal_client)
    for incident_id, version in ((first, first_version), (second, second_version)):
        handle = incidents.handle(incident_id)
        await pending(handle)
        opened = (await handle.query(IncidentWorkflow.audit))[0].what
        assert f"rules: policy {version}" in opened, opened
        await handle.terminate("test done")
    assert first_version != second_version


def test_the_kill_switch_is_read_from_the_file_as_it_is_now(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    policy_file = policies / "default.yaml"
    policy_file.write_text(policy_yaml())
    check = KillSwitchActivities(RulesSource(policies, tmp_path).policy).check_kill_switch
    ask = KillSwitchInput(incident_id="incident-x", step="step 1")
    assert not check(ask).on
    policy_file.write_text("kill_switch: true\n" + policy_yaml())
    flipped = check(ask)
    assert flipped.on and "the kill switch is on in the policy now" in flipped.reason
    policy_file.write_text("kill_switch: [not, a, bool\n")
    broken = check(ask)
    assert broken.on, "a policy that does not load stops every step"
    assert "cannot be read now" in broken.reason
    policy_file.unlink()
    assert check(ask).on
