"""Opening incidents from anomalies: group them by namespace and open or join one
IncidentWorkflow per group (signal-with-start, so repeats join the incident that is still open).

`open_or_join_incidents` is the one way anomalies become incidents: the detection loop calls it
through the `open_incidents` activity, the Alertmanager webhook calls it directly.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.intake_contracts import (
    OPEN_INCIDENTS,
    OpenIncidentsInput,
    OpenIncidentsResult,
)
from aiops.detect.grouping import AnomalyGroup, group_anomalies
from aiops.domain import Anomaly, Incident, Severity
from aiops.logs import get_logger
from workflows.incident import AnomalyBatch, IncidentInput

log = get_logger(__name__)


def incident_of(group: AnomalyGroup) -> Incident:
    """The incident a group of one pass's anomalies opens (what the investigation is given)."""
    severity = Severity.CRITICAL if group.anomalies[0].score >= 0.9 else Severity.WARNING
    return Incident(
        id=group.incident_id,
        fingerprint=group.fingerprint,
        namespace=group.namespace,
        service=group.service,
        opened_at=min(a.start for a in group.anomalies),
        anomalies=group.anomalies,
        severity=severity,
    )


async def open_or_join_incidents(
    client: Client,
    task_queue: str,
    anomalies: list[Anomaly],
    rules: RulesSnapshot,
    *,
    index: bool,
) -> list[str]:
    """Start the incident of each namespace, or signal the one still open; return their ids."""
    ids = []
    for group in group_anomalies(anomalies):
        await client.start_workflow(
            "IncidentWorkflow",
            IncidentInput(incident=incident_of(group), rules=rules, index=index),
            id=group.incident_id,
            task_queue=task_queue,
            start_signal="add_anomalies",
            start_signal_args=[AnomalyBatch(anomalies=group.anomalies)],
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        log.info(
            "incident opened or joined",
            incident_id=group.incident_id,
            anomalies=len(group.anomalies),
            service=group.service,
            sources=sorted({a.source for a in group.anomalies}),
        )
        ids.append(group.incident_id)
    return ids


class IntakeActivities:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    @activity.defn(name=OPEN_INCIDENTS)
    async def open_incidents(self, inp: OpenIncidentsInput) -> OpenIncidentsResult:
        ids = await open_or_join_incidents(
            self.client, self.task_queue, inp.anomalies, inp.rules, index=inp.index
        )
        return OpenIncidentsResult(incident_ids=ids)

    def all(self) -> list[object]:
        return [self.open_incidents]
