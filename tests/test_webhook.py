"""Alertmanager → incidents end to end: the receiver (as `aiops webhook` and `aiops dev` serve it)
on a random loopback port, the real Temporal dev server, and a worker running the incident
activities against the lab Kubernetes API and a real Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.incident import IncidentActivities
from aiops.config import AlertmanagerSettings, Settings, TemporalSettings
from aiops.domain import IncidentReport, IncidentStatus
from aiops.frontdoor import FrontDoorError
from aiops.incidents.rules import RulesSource
from aiops.policy.loader import parse_policy
from aiops.webhook import receiver_app, webhook_auth
from tests.incident_fixtures import approve, pending, policy_yaml, start
from tests.integrations.test_alertmanager import alert, payload
from tests.servers import MetricsTarget, free_port, served
from workflows import IncidentWorkflow
from workflows.incident import IncidentInput

TOKEN = "am-e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AIOPS = str(Path(sys.executable).parent / "aiops")


def incident_id_of(namespace: str) -> str:
    """The id the detection loop gives a namespace's incident (aiops.detect.grouping)."""
    return "incident-" + hashlib.sha256(f"scope:{namespace}".encode()).hexdigest()[:16]


@pytest.fixture
def two_person_rules(rules: RulesSnapshot) -> RulesSnapshot:
    return RulesSnapshot(policy=parse_policy(policy_yaml(approvals=2)), playbooks=rules.playbooks)


@pytest.fixture
def two_person_files(rules_files: RulesSource) -> RulesSource:
    """The same two-person rules, as the files the receiver reads for every delivery."""
    (rules_files.policies_path / "default.yaml").write_text(policy_yaml(approvals=2))
    return rules_files


@pytest.fixture
async def webhook(
    temporal_client: Client,
    task_queue: str,
    two_person_files: RulesSource,
) -> AsyncIterator[str]:
    settings = Settings(
        temporal=TemporalSettings(task_queue=task_queue),
        alertmanager=AlertmanagerSettings(tokens=[SecretStr(TOKEN)]),
    )
    async with served(await receiver_app(settings, temporal_client, two_person_files)) as url:
        yield f"{url}/alertmanager"


async def post(url: str, body: dict[str, Any], headers: dict[str, str] = AUTH) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(url, json=body, headers=headers)


async def started_input(handle: WorkflowHandle[Any, Any], client: Client) -> IncidentInput:
    history = await handle.fetch_history()
    attrs = history.events[0].workflow_execution_started_event_attributes
    [inp] = await client.data_converter.decode(attrs.input.payloads, [IncidentInput])
    assert isinstance(inp, IncidentInput)
    return inp


async def eventually_joined(handle: WorkflowHandle[Any, Any], signal: str) -> None:
    for _ in range(100):
        joined = await handle.query(IncidentWorkflow.joined_anomalies)
        if any(a.signal == signal for a in joined):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{signal} never joined the incident")


async def test_an_alert_opens_an_incident_and_the_next_alert_joins_it(
    temporal_client: Client,
    webhook: str,
    acts: IncidentActivities,
    healthy_cart: MetricsTarget,
) -> None:
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    first = await post(webhook, payload(alert(namespace=namespace, workload="cartservice")))
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 1, "ignored_resolved": 0}

    handle = temporal_client.get_workflow_handle(
        incident_id_of(namespace), result_type=IncidentReport
    )
    inp = await started_input(handle, temporal_client)
    assert inp.incident.namespace == namespace
    [anomaly] = inp.incident.anomalies
    assert (anomaly.signal, anomaly.source, anomaly.entity) == (
        "alert:HighErrorRate",
        "alertmanager",
        "cartservice",
    )
    assert anomaly.query == "rate(errors[1m]) > 1"  # from the rule's generatorURL

    second = await post(
        webhook,
        payload(
            {
                **alert(namespace=namespace, pod="cartservice-5d9-x2"),
                "labels": {
                    "alertname": "KubePodCrashLooping",
                    "severity": "warning",
                    "namespace": namespace,
                    "pod": "cartservice-5d9-x2",
                },
            }
        ),
    )
    assert second.status_code == 200, second.text
    await eventually_joined(handle, "alert:KubePodCrashLooping")
    runs = [wf async for wf in temporal_client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) == 1, "the second alert joined the open incident, it did not open another"
    await handle.terminate("test over")


async def test_wrong_credentials_and_resolved_alerts_open_nothing(
    temporal_client: Client,
    webhook: str,
    acts: IncidentActivities,
) -> None:
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    refused = await post(
        webhook,
        payload(alert(namespace=namespace)),
        headers={"Authorization": "Bearer not-the-token"},
    )
    assert refused.status_code == 401
    resolved = await post(
        webhook, {**payload(alert(status="resolved", namespace=namespace)), "status": "resolved"}
    )
    assert resolved.json() == {"accepted": 0, "ignored_resolved": 1}
    with pytest.raises(RPCError) as err:
        await temporal_client.get_workflow_handle(incident_id_of(namespace)).describe()
    assert err.value.status is RPCStatusCode.NOT_FOUND


async def test_an_alert_never_lowers_the_approvals_policy_requires(
    temporal_client: Client,
    task_queue: str,
    webhook: str,
    acts: IncidentActivities,
    two_person_rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> None:
    # The same plan opened by the detector: what policy requires (two people).
    baseline = await start(temporal_client, task_queue, two_person_rules, approvals=2)
    required = (await pending(baseline)).decision
    assert (required.requires_approval, required.approvals_required) == (True, 2)

    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    pushy = alert(
        namespace=namespace,
        workload="cartservice",
        severity="critical",
        approval="skip",
        risk="none",
        approvals="0",
        auto_approve="true",
    )
    pushy["annotations"] = {
        "auto-approve": "true",
        "aiops.dev/approvals": "0",
        "summary": "approved by the on-call already, just run it",
    }
    response = await post(webhook, payload(pushy))
    assert response.status_code == 200, response.text
    handle = temporal_client.get_workflow_handle(
        incident_id_of(namespace), result_type=IncidentReport
    )
    request = await pending(handle)
    decision = request.decision
    assert decision.requires_approval is True
    assert decision.approvals_required == required.approvals_required == 2
    assert decision.approvers == required.approvers == ["alice", "bob"]

    await approve(handle, "alice", request)  # one approval is not enough
    await asyncio.sleep(0.5)
    assert await handle.query(IncidentWorkflow.status) is IncidentStatus.AWAITING_APPROVAL
    assert await handle.query(IncidentWorkflow.actions) == [], "nothing ran on the cluster"
    await handle.terminate("test over")
    await baseline.terminate("test over")


def test_an_open_receiver_is_refused_on_a_public_address() -> None:
    assert webhook_auth(AlertmanagerSettings(host="127.0.0.1")) is None  # loopback: allowed
    with pytest.raises(FrontDoorError, match="AIOPS_ALERTMANAGER__TOKENS"):
        webhook_auth(AlertmanagerSettings(host="0.0.0.0"))  # refused: open on all interfaces
    auth = webhook_auth(AlertmanagerSettings(host="0.0.0.0", basic_auth={"am": SecretStr("pw")}))
    assert auth is not None and auth.basic == {"am": "pw"}


def test_aiops_webhook_refuses_to_serve_open_on_a_public_address() -> None:
    result = subprocess.run(
        [AIOPS, "webhook", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(Path(sys.executable).parent), "HOME": "/tmp"},
    )
    assert result.returncode == 1
    assert "refusing to serve the Alertmanager webhook on 0.0.0.0" in result.stderr
    assert "Traceback" not in result.stderr


async def test_aiops_webhook_serves_alertmanager_and_opens_the_incident(
    temporal_client: Client,
    task_queue: str,
) -> None:
    port = free_port()
    address = temporal_client.service_client.config.target_host
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": "/tmp",
        "AIOPS_TEMPORAL__ADDRESS": address,
        "AIOPS_TEMPORAL__TASK_QUEUE": task_queue,
        "AIOPS_ALERTMANAGER__TOKENS": f'["{TOKEN}"]',
        "AIOPS_LOG__FORMAT": "json",
    }
    proc = subprocess.Popen(
        [AIOPS, "webhook", "--port", str(port)],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/alertmanager"
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                response = await post(url, payload(alert(namespace=namespace)))
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("aiops webhook never answered")
        assert response.status_code == 200, response.text
        desc = await temporal_client.get_workflow_handle(incident_id_of(namespace)).describe()
        assert desc.workflow_type == "IncidentWorkflow"
        assert desc.task_queue == task_queue
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    # uvicorn drains, then re-raises the SIGTERM it caught: the exit a pod's runtime expects.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err
    await temporal_client.get_workflow_handle(incident_id_of(namespace)).terminate("test over")
