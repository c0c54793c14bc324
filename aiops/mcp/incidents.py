"""Reading an incident for the MCP tools: status and pending plan from the workflow's queries,
the incident (anomalies) and the RCA report from its Temporal history, so both are available
while the workflow still runs, and the closing report once it has finished."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastmcp.exceptions import ToolError
from pydantic import BaseModel, ConfigDict
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from aiops.domain import (
    Anomaly,
    ApprovalRequest,
    AuditEntry,
    Incident,
    IncidentReport,
    IncidentStatus,
    RcaReport,
)

INVESTIGATE = "investigate_incident"
QUERY_TIMEOUT = timedelta(seconds=5)


class _StartInput(BaseModel):
    # Only what the tools show; the rules snapshot is large and not needed here.
    model_config = ConfigDict(extra="ignore")

    incident: Incident


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


def not_found(incident_id: str) -> ToolError:
    return ToolError(f"no incident {incident_id!r}; list_incidents shows the known ids")


def check_id(incident_id: str) -> str:
    incident_id = incident_id.strip()
    if not incident_id or len(incident_id) > 200 or any(c.isspace() for c in incident_id):
        raise ToolError(
            f"incident_id {incident_id[:60]!r} is not an incident id; ids look like "
            "'incident-3f2a9c...'; list_incidents shows them"
        )
    return incident_id


async def read_incident(client: Client, incident_id: str) -> IncidentDetail:
    incident_id = check_id(incident_id)
    handle: WorkflowHandle[Any, IncidentReport] = client.get_workflow_handle(
        incident_id, result_type=IncidentReport
    )
    try:
        desc, history = await asyncio.gather(
            handle.describe(rpc_timeout=QUERY_TIMEOUT),
            handle.fetch_history(rpc_timeout=QUERY_TIMEOUT),
        )
    except RPCError as exc:
        raise _explain(incident_id, exc) from exc
    if desc.workflow_type != "IncidentWorkflow":
        raise not_found(incident_id)
    detail = IncidentDetail(
        id=incident_id,
        execution=desc.status.name if desc.status else "UNKNOWN",
        started_at=desc.start_time,
        closed_at=desc.close_time,
        history=list(history.events),
    )
    converter = client.data_converter
    investigate_ids: set[int] = set()
    for ev in history.events:
        if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = ev.workflow_execution_started_event_attributes.input.payloads
            if payloads:
                start = await converter.decode([payloads[0]], [_StartInput])
                detail.incident = start[0].incident
        elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = ev.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == INVESTIGATE:
                investigate_ids.add(ev.event_id)
        elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = ev.activity_task_completed_event_attributes
            if done.scheduled_event_id in investigate_ids and done.result.payloads:
                rca = await converter.decode([done.result.payloads[0]], [RcaReport])
                detail.rca = rca[0]
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            result = ev.workflow_execution_completed_event_attributes.result.payloads
            if result:
                report = await converter.decode([result[0]], [IncidentReport])
                detail.report = report[0]
    if detail.report is not None:
        detail.status = detail.report.status
        detail.audit = list(detail.report.audit)
        detail.rca = detail.report.rca or detail.rca
    elif desc.status is not None and desc.status.name == "RUNNING":
        try:
            # Three queries at once: each is a round trip through the worker.
            detail.status, detail.pending, detail.audit = await asyncio.gather(
                handle.query("status", result_type=IncidentStatus, rpc_timeout=QUERY_TIMEOUT),
                handle.query(
                    "pending_approval",
                    result_type=ApprovalRequest | None,  # type: ignore[arg-type]
                    rpc_timeout=QUERY_TIMEOUT,
                ),
                handle.query("audit", result_type=list[AuditEntry], rpc_timeout=QUERY_TIMEOUT),
            )
        except RPCError as exc:
            detail.notes.append(
                "the workflow did not answer its queries (is an `aiops worker` running?); "
                f"showing what its history holds ({_short(exc.message)})"
            )
    return detail


class _Batch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    anomalies: list[Anomaly]


async def read_anomalies(client: Client, incident_id: str) -> tuple[Incident, list[Anomaly]]:
    """The incident as opened and every anomaly that opened or joined it (the start input and
    the `add_anomalies` signals of its history, each once): one history read, no queries, so
    listing the anomalies of many incidents costs no worker round trips."""
    handle = client.get_workflow_handle(check_id(incident_id))
    try:
        history = await handle.fetch_history(rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        raise _explain(incident_id, exc) from exc
    converter = client.data_converter
    incident: Incident | None = None
    anomalies: dict[str, Anomaly] = {}
    for ev in history.events:
        if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = ev.workflow_execution_started_event_attributes
            if attrs.workflow_type.name != "IncidentWorkflow" or not attrs.input.payloads:
                raise not_found(incident_id)
            start = await converter.decode([attrs.input.payloads[0]], [_StartInput])
            incident = start[0].incident
            batch = incident.anomalies
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs_s = ev.workflow_execution_signaled_event_attributes
            if attrs_s.signal_name != "add_anomalies" or not attrs_s.input.payloads:
                continue
            batch = (await converter.decode([attrs_s.input.payloads[0]], [_Batch]))[0].anomalies
        else:
            continue
        for a in batch:
            anomalies.setdefault(f"{a.fingerprint()}@{a.start.isoformat()}", a)
    if incident is None:
        raise not_found(incident_id)
    return incident, list(anomalies.values())


async def recent_incident_ids(
    client: Client, limit: int, status: str | None = None
) -> list[tuple[str, str, datetime, datetime | None]]:
    query = "WorkflowType = 'IncidentWorkflow'"
    if status is not None:
        query += f" AND ExecutionStatus = '{status}'"
    found = []
    async for wf in client.list_workflows(query, limit=limit):
        found.append(
            (wf.id, wf.status.name if wf.status else "UNKNOWN", wf.start_time, wf.close_time)
        )
    return found


def _short(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:160]


def _explain(incident_id: str, exc: RPCError) -> ToolError:
    if exc.status is RPCStatusCode.NOT_FOUND:
        return not_found(incident_id)
    if exc.status is RPCStatusCode.INVALID_ARGUMENT:
        return ToolError(f"{incident_id!r} is not a valid incident id; list_incidents shows them")
    return ToolError(
        f"Temporal could not answer for {incident_id!r}: {_short(exc.message)}; "
        "retry, or check `aiops doctor`"
    )
