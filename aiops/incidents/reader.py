"""Reading an incident from its Temporal history: the incident as opened, every anomaly that
joined, the root-cause report and the closing report. History answers while the workflow still
runs and after it closed, without a worker; the live parts (status, pending plan, audit) come
from the workflow's queries where it still runs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from aiops.activities.contracts import INVESTIGATE_INCIDENT
from aiops.domain import (
    Anomaly,
    ApprovalRequest,
    AuditEntry,
    Incident,
    IncidentReport,
    IncidentStatus,
    RcaReport,
)
from aiops.incidents.client import IncidentClient, explain, first_line
from aiops.incidents.errors import IncidentNotFoundError
from workflows.incident import IncidentWorkflow
from workflows.incident_messages import ADD_ANOMALIES, anomaly_key

WORKFLOW = "IncidentWorkflow"


class _StartInput(BaseModel):
    # Only the incident; the rules snapshot is large and not needed here.
    model_config = ConfigDict(extra="ignore")

    incident: Incident


class _Batch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    anomalies: list[Anomaly]


@dataclass
class IncidentDetail:
    id: str
    execution: str
    started_at: datetime | None
    closed_at: datetime | None
    status: IncidentStatus | None = None
    incident: Incident | None = None
    rca: RcaReport | None = None
    pending: ApprovalRequest | None = None
    report: IncidentReport | None = None
    audit: list[AuditEntry] = field(default_factory=list)
    history: list[HistoryEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def read_detail(
    incidents: IncidentClient, incident_id: str, rpc_timeout: timedelta | None = None
) -> IncidentDetail:
    handle = incidents.handle(incident_id)
    try:
        desc, history = await asyncio.gather(
            handle.describe(rpc_timeout=rpc_timeout), handle.fetch_history(rpc_timeout=rpc_timeout)
        )
    except RPCError as exc:
        raise explain(incident_id, exc) from exc
    if desc.workflow_type != WORKFLOW:
        raise IncidentNotFoundError(f"no incident {incident_id!r}")
    detail = IncidentDetail(
        id=incident_id,
        execution=desc.status.name if desc.status else "UNKNOWN",
        started_at=desc.start_time,
        closed_at=desc.close_time,
        history=list(history.events),
    )
    await _decode(incidents.temporal, history.events, detail)
    if detail.report is not None:
        detail.status = detail.report.status
        detail.audit = list(detail.report.audit)
        detail.rca = detail.report.rca or detail.rca
    elif desc.status is WorkflowExecutionStatus.RUNNING:
        run = incidents.handle(incident_id, desc.run_id)
        try:
            # Three queries at once: each is a round trip through the worker.
            detail.status, detail.pending, detail.audit = await asyncio.gather(
                run.query(IncidentWorkflow.status, rpc_timeout=rpc_timeout),
                run.query(IncidentWorkflow.pending_approval, rpc_timeout=rpc_timeout),
                run.query(IncidentWorkflow.audit, rpc_timeout=rpc_timeout),
            )
        except (RPCError, WorkflowQueryFailedError) as exc:
            detail.notes.append(
                "the workflow did not answer its queries (is an `aiops worker` running?); "
                f"showing what its history holds ({first_line(str(exc))})"
            )
    return detail


async def _decode(client: Client, events: Sequence[HistoryEvent], detail: IncidentDetail) -> None:
    converter = client.data_converter
    investigations: set[int] = set()
    for ev in events:
        if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = ev.workflow_execution_started_event_attributes.input.payloads
            if payloads:
                [start] = await converter.decode([payloads[0]], [_StartInput])
                detail.incident = start.incident
        elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = ev.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == INVESTIGATE_INCIDENT:
                investigations.add(ev.event_id)
        elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = ev.activity_task_completed_event_attributes
            # The first report: later looks (at anomalies that joined) do not replace it.
            first = done.scheduled_event_id in investigations and detail.rca is None
            if first and done.result.payloads:
                [rca] = await converter.decode([done.result.payloads[0]], [RcaReport])
                detail.rca = rca
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            result = ev.workflow_execution_completed_event_attributes.result.payloads
            if result:
                [report] = await converter.decode([result[0]], [IncidentReport])
                detail.report = report


async def read_anomalies(
    incidents: IncidentClient,
    incident_id: str,
    run_id: str | None = None,
    rpc_timeout: timedelta | None = None,
) -> tuple[Incident, list[Anomaly]]:
    """The incident as opened and every anomaly that opened or joined it (the start input and
    the `add_anomalies` signals of its history, each once): one history read, no queries, so
    listing the anomalies of many incidents costs no worker round trips."""
    handle = incidents.handle(incident_id, run_id)
    try:
        history = await handle.fetch_history(rpc_timeout=rpc_timeout)
    except RPCError as exc:
        raise explain(incident_id, exc) from exc
    converter = incidents.temporal.data_converter
    incident: Incident | None = None
    anomalies: dict[str, Anomaly] = {}
    for ev in history.events:
        if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = ev.workflow_execution_started_event_attributes
            if attrs.workflow_type.name != WORKFLOW or not attrs.input.payloads:
                raise IncidentNotFoundError(f"no incident {incident_id!r}")
            [start] = await converter.decode([attrs.input.payloads[0]], [_StartInput])
            incident = start.incident
            batch = incident.anomalies
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signaled = ev.workflow_execution_signaled_event_attributes
            if signaled.signal_name != ADD_ANOMALIES or not signaled.input.payloads:
                continue
            [joined] = await converter.decode([signaled.input.payloads[0]], [_Batch])
            batch = joined.anomalies
        else:
            continue
        for a in batch:
            anomalies.setdefault(anomaly_key(a), a)
    if incident is None:
        raise IncidentNotFoundError(f"no incident {incident_id!r}")
    return incident, list(anomalies.values())
