"""Read tools over the incident workflows (Temporal): list, one incident, anomalies, audit."""

from __future__ import annotations

import asyncio

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError

from aiops.mcp.audit import audit_trail
from aiops.mcp.backends import Backends
from aiops.mcp.common import BACKENDS, READ_ONLY, TAGS, bounded
from aiops.mcp.incidents import read_anomalies, read_incident, recent_incident_ids
from aiops.mcp.models import AnomalyRow, AuditRow, IncidentRow, IncidentView
from aiops.mcp.views import incident_view

MAX_LIST = 200
STATUSES = ("Running", "Completed", "Failed", "Terminated", "TimedOut", "Canceled")


async def list_incidents(
    status: str | None = None, limit: int = 20, b: Backends = BACKENDS
) -> list[IncidentRow]:
    """List recent incidents (newest first), optionally only those whose workflow has a
    given status (Running, Completed, Failed, Terminated, TimedOut, Canceled)."""
    bounded(limit, "limit", 1, MAX_LIST)
    if status is not None and status not in STATUSES:
        raise ToolError(f"status must be one of {', '.join(STATUSES)}; got {status[:40]!r}")
    found = await recent_incident_ids(await b.temporal(), limit, status)
    return [IncidentRow(id=i, status=st, started_at=t0, closed_at=t1) for i, st, t0, t1 in found]


async def get_incident(incident_id: str, b: Backends = BACKENDS) -> IncidentView:
    """One incident: its anomalies, the root-cause report (ranked hypotheses with
    evidence), the remediation plan with the policy decision, the status, and, while it
    waits for a decision, the plan hash to approve with its dry-run diff and expiry."""
    detail = await read_incident(await b.temporal(), incident_id)
    return incident_view(detail, b.settings)


async def list_anomalies(
    limit: int = 10, service: str | None = None, b: Backends = BACKENDS
) -> list[AnomalyRow]:
    """Anomalies behind the most recent incidents (newest incidents first), including those
    that joined an open incident later: the signal, series, score, value against baseline
    and the PromQL that shows it."""
    bounded(limit, "limit", 1, 50)
    client = await b.temporal()
    ids = await recent_incident_ids(client, limit)
    read = await asyncio.gather(
        *(read_anomalies(client, i) for i, *_ in ids), return_exceptions=True
    )
    out = []
    for found in read:
        if isinstance(found, BaseException):
            continue  # an incident deleted since it was listed
        incident, anomalies = found
        for a in anomalies:
            if service is not None and service not in (a.entity, incident.service):
                continue
            out.append(AnomalyRow(incident_id=incident.id, **dict(a)))
    return out


async def get_audit_trail(incident_id: str, b: Backends = BACKENDS) -> list[AuditRow]:
    """The incident's history in plain words: who did what, and when (from the Temporal
    workflow history: opened, investigated, planned, policy, approvals, steps, closed)."""
    client = await b.temporal()
    detail = await read_incident(client, incident_id)
    return [AuditRow.model_validate(row) for row in await audit_trail(client, detail)]


def register(mcp: FastMCP) -> None:
    for tool in (list_incidents, get_incident, list_anomalies, get_audit_trail):
        mcp.tool(tool, annotations=READ_ONLY, tags=TAGS)
