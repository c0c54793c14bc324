"""The detection loop on the real dev server against a real Prometheus: an error burst opens one
incident through signal-with-start; the next burst in the same namespace joins it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from aiops.activities.detection import DetectionActivities
from aiops.activities.incident import IncidentActivities
from aiops.activities.intake import IntakeActivities
from aiops.activities.intake_contracts import OPEN_INCIDENTS
from aiops.activities.notify import NotifyActivities
from aiops.config import DetectionSettings, PrometheusSettings, Settings
from aiops.domain import Anomaly, IncidentStatus
from aiops.incidents.client import IncidentClient
from aiops.incidents.intake import AnomalyIntake
from aiops.incidents.rules import RulesSource
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.prometheus import Prometheus
from aiops.worker import build_worker
from tests.detect.test_pass_prometheus import IstioTarget, prometheus_with_history
from tests.incident_fixtures import FixedInvestigator
from tests.servers import MetricsTarget, PrometheusServer
from tests.workflows.recording import activity_events, replay_and_record
from workflows import DetectionLoopWorkflow, IncidentWorkflow
from workflows.detection import DetectionLoopInput

RATE_WINDOW_S = 5


@pytest.fixture(scope="module")
def istio() -> Iterator[tuple[IstioTarget, str]]:
    target = IstioTarget()
    try:
        with prometheus_with_history(target, 400) as url:
            yield target, url
    finally:
        target.close()


async def test_a_burst_opens_one_incident_and_the_next_joins_it(
    temporal_client: Client,
    task_queue: str,
    istio: tuple[IstioTarget, str],
    tmp_path: Path,
    rules_files: RulesSource,
    executor: KubernetesExecutor,
    prometheus: PrometheusServer,
    healthy_cart: MetricsTarget,
) -> None:
    target, url = istio
    settings = Settings(
        state_dir=tmp_path,
        prometheus=PrometheusSettings(url=url, timeout_s=5),
        detection=DetectionSettings(interval_s=1, prime_s=300, rate_window=f"{RATE_WINDOW_S}s"),
    )
    # Incidents wait for approval (the test policy asks for it), so they stay open.
    incidents = IncidentActivities(
        investigator=FixedInvestigator(),
        executor=executor,
        prometheus=Prometheus(PrometheusSettings(url=prometheus.url)),
    )
    activities = [
        *incidents.all(),
        *NotifyActivities(None).all(),
        *DetectionActivities(settings).all(),
        *IntakeActivities(
            AnomalyIntake(IncidentClient(temporal_client, task_queue), rules_files)
        ).all(),
    ]
    async with build_worker(temporal_client, task_queue, activities):  # type: ignore[arg-type]
        loop = await temporal_client.start_workflow(
            DetectionLoopWorkflow.run,
            DetectionLoopInput(stream="t", interval_s=1, passes_per_run=5),
            id=f"loop-{task_queue}",
            task_queue=task_queue,
        )
        await asyncio.sleep(4)  # a few passes (and a continue-as-new soon after)

        target.fault_at["checkout"] = time.time()
        incident_id = await _first_incident(temporal_client, loop.id)
        handle = temporal_client.get_workflow_handle(incident_id)
        for _ in range(40):
            if "checkout" in await _entities(handle):
                break
            await asyncio.sleep(0.5)
        target.fault_at["cart"] = time.time()
        for _ in range(40):
            if "cart" in await _entities(handle):
                break
            await asyncio.sleep(0.5)
        entities = await _entities(handle)
        assert await handle.query(IncidentWorkflow.status) is IncidentStatus.AWAITING_APPROVAL
        first_run = temporal_client.get_workflow_handle(loop.id, run_id=loop.first_execution_run_id)
        loop = temporal_client.get_workflow_handle_for(DetectionLoopWorkflow.run, loop.id)
        status = await loop.query(DetectionLoopWorkflow.loop_status)
        await _continued_as_new(first_run)
        await loop.terminate("test done")
        await handle.terminate("test done")
        await _replay_and_record_runs(temporal_client, first_run, handle)
    del target.fault_at["checkout"]
    del target.fault_at["cart"]
    assert status.incidents_opened_or_joined == [incident_id], "one namespace, one incident"
    assert "checkout" in entities
    assert "cart" in entities, "the second burst joined the open incident"


async def _entities(handle: WorkflowHandle[Any, Any]) -> set[str]:
    """Workloads whose anomalies the incident holds (opening batch and joined ones)."""
    joined: list[Anomaly] = await handle.query(IncidentWorkflow.joined_anomalies)
    history = await handle.fetch_history()
    start = history.events[0].workflow_execution_started_event_attributes
    opening = json.loads(start.input.payloads[0].data)["incident"]["anomalies"]
    return {a.entity for a in joined} | {a["series"].get("workload", "") for a in opening}


async def _first_incident(client: Client, loop_id: str) -> str:
    for _ in range(40):
        loop = client.get_workflow_handle_for(DetectionLoopWorkflow.run, loop_id)
        status = await loop.query(DetectionLoopWorkflow.loop_status)
        if status.incidents_opened_or_joined:
            ids: list[str] = status.incidents_opened_or_joined
            return ids[0]
        await asyncio.sleep(0.5)
    raise AssertionError("no incident was opened for the error burst")


async def _replay_and_record_runs(
    client: Client, first_run: WorkflowHandle[Any, Any], incident: WorkflowHandle[Any, Any]
) -> None:
    """The loop's first run (it ended in continue-as-new), the run whose pass opened the
    incident by signal-with-start, and the incident so opened."""
    await replay_and_record(first_run, "detection-loop-continue-as-new")
    opener = None
    async for run in client.list_workflows(f"WorkflowId = '{first_run.id}'"):
        handle = client.get_workflow_handle(run.id, run_id=run.run_id)
        if activity_events(await handle.fetch_history(), OPEN_INCIDENTS):
            opener = handle
    assert opener is not None, "no run of the loop opened the incident"
    await replay_and_record(opener, "detection-loop-signal-with-start")
    await replay_and_record(incident, "incident-signal-with-start")


async def _continued_as_new(run: WorkflowHandle[Any, Any]) -> None:
    for _ in range(60):
        if (await run.describe()).status is WorkflowExecutionStatus.CONTINUED_AS_NEW:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("the loop did not continue as new after its five passes")
