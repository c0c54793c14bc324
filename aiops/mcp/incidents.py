"""Reading incidents for the MCP tools, through the incident client (aiops.incidents): status and
pending plan from the workflow's queries, the incident (anomalies) and the RCA report from its
Temporal history, so both are available while the workflow still runs, and the closing report
once it has finished. Failures become ToolErrors a person can act on."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastmcp.exceptions import ToolError
from temporalio.client import Client

from aiops.domain import Anomaly, Incident
from aiops.incidents.client import IncidentClient
from aiops.incidents.errors import IncidentError, IncidentNotFoundError
from aiops.incidents.reader import IncidentDetail, read_detail
from aiops.incidents.reader import read_anomalies as _read_anomalies

__all__ = ["IncidentDetail", "check_id", "read_anomalies", "read_incident", "recent_incident_ids"]

QUERY_TIMEOUT = timedelta(seconds=5)


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


def tool_error(incident_id: str, exc: IncidentError) -> ToolError:
    if isinstance(exc, IncidentNotFoundError):
        return not_found(incident_id)
    return ToolError(f"{exc}; retry, or check `aiops doctor`")


async def read_incident(client: Client, incident_id: str) -> IncidentDetail:
    incident_id = check_id(incident_id)
    try:
        return await read_detail(IncidentClient(client), incident_id, QUERY_TIMEOUT)
    except IncidentError as exc:
        raise tool_error(incident_id, exc) from exc


async def read_anomalies(client: Client, incident_id: str) -> tuple[Incident, list[Anomaly]]:
    """The incident as opened and every anomaly that opened or joined it."""
    incident_id = check_id(incident_id)
    try:
        return await _read_anomalies(IncidentClient(client), incident_id, rpc_timeout=QUERY_TIMEOUT)
    except IncidentError as exc:
        raise tool_error(incident_id, exc) from exc


async def recent_incident_ids(
    client: Client, limit: int, status: str | None = None
) -> list[tuple[str, str, datetime, datetime | None]]:
    query = f"ExecutionStatus = '{status}'" if status is not None else ""
    found = await IncidentClient(client).find(limit=limit, query=query)
    return [(i.id, i.execution, i.started_at, i.closed_at) for i in found]
