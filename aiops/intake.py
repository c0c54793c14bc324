"""Opening incidents: one IncidentWorkflow per incident id, with the rules in force attached."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from aiops.activities.intake import open_or_join_incidents
from aiops.domain import Anomaly, Incident, IncidentReport
from aiops.integrations.alertmanager import AnomalySink, SinkUnavailableError
from aiops.temporal_setup import SEARCH_ATTRIBUTES
from aiops.worker import Rules
from workflows.detection import DetectionLoopInput, DetectionLoopWorkflow
from workflows.incident import IncidentInput, IncidentWorkflow, RulesSnapshot

DETECTION_LOOP_ID = "aiops-detection-loop"


def snapshot(rules: Rules) -> RulesSnapshot:
    return RulesSnapshot(policy=rules.policy, playbooks=rules.playbooks)


async def search_attributes_ready(client: Client) -> bool:
    """Whether the namespace has every Aiops* search attribute (temporal/setup-namespace.sh)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError:
        return False
    return set(SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)


async def open_incident(
    client: Client,
    task_queue: str,
    incident: Incident,
    rules: Rules,
    *,
    kill_switch: bool = False,
    index: bool | None = None,
) -> WorkflowHandle[IncidentWorkflow, IncidentReport]:
    if index is None:
        index = await search_attributes_ready(client)
    return await client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(
            incident=incident, rules=snapshot(rules), kill_switch=kill_switch, index=index
        ),
        id=incident.id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    )


async def start_detection_loop(
    client: Client,
    task_queue: str,
    rules: Rules,
    *,
    interval_s: float,
) -> WorkflowHandle[DetectionLoopWorkflow, None]:
    """Start the one detection loop of this namespace, or return the one already running."""
    index = await search_attributes_ready(client)
    return await client.start_workflow(
        DetectionLoopWorkflow.run,
        DetectionLoopInput(rules=snapshot(rules), interval_s=interval_s, index=index),
        id=DETECTION_LOOP_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def incident_sink(client: Client, task_queue: str, rules: Rules, *, index: bool) -> AnomalySink:
    """Where the Alertmanager webhook puts its anomalies: the incidents, opened or joined as the
    detection loop does, with the rules loaded at start (an alert brings no rules of its own)."""
    rules_snapshot = snapshot(rules)

    async def sink(anomalies: list[Anomaly]) -> None:
        try:
            await open_or_join_incidents(client, task_queue, anomalies, rules_snapshot, index=index)
        except RPCError as exc:
            raise SinkUnavailableError(
                f"Temporal did not take the incident ({exc.message}); Alertmanager will retry"
            ) from exc

    return sink
