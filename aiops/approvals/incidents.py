"""Reading incidents and deciding on them through Temporal, for the CLI (and any thin client).

The workflow's `decide` validator is the authority: this module only sends what the person chose,
with the identity of the channel, and turns refusals into messages a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from aiops.domain import (
    ApprovalRequest,
    DecideResult,
    Decision,
    IncidentReport,
    IncidentStatus,
)

INCIDENT_QUERY = "WorkflowType = 'IncidentWorkflow'"


class IncidentError(Exception):
    """The incident cannot be read or decided; the message says why and what to do."""


@dataclass(frozen=True)
class IncidentSummary:
    id: str
    execution: str
    started_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class IncidentView:
    id: str
    execution: str
    status: IncidentStatus | None
    pending: ApprovalRequest | None
    report: IncidentReport | None


async def list_incidents(client: Client, limit: int = 50) -> list[IncidentSummary]:
    found = []
    async for wf in client.list_workflows(INCIDENT_QUERY, limit=limit):
        found.append(
            IncidentSummary(
                id=wf.id,
                execution=wf.status.name if wf.status else "UNKNOWN",
                started_at=wf.start_time,
                closed_at=wf.close_time,
            )
        )
    return found


async def show_incident(client: Client, incident_id: str) -> IncidentView:
    handle = client.get_workflow_handle(incident_id, result_type=IncidentReport)
    try:
        desc = await handle.describe()
        status = await handle.query("status", result_type=IncidentStatus)
        pending = await handle.query(
            "pending_approval",
            result_type=ApprovalRequest | None,  # type: ignore[arg-type]
        )
    except RPCError as exc:
        raise _explain(incident_id, exc) from exc
    report = None
    if desc.status is not None and desc.status.name == "COMPLETED":
        report = await handle.result()
    return IncidentView(
        id=incident_id,
        execution=desc.status.name if desc.status else "UNKNOWN",
        status=status,
        pending=pending,
        report=report,
    )


async def decide(
    client: Client,
    incident_id: str,
    *,
    approve: bool,
    identity: str,
    channel: str = "cli",
    plan_hash: str | None = None,
    reason: str = "",
) -> str:
    """Send a decision on the pending plan. Without `plan_hash` the currently pending plan is
    decided; with it, the decision holds only if that is still the pending plan."""
    view = await show_incident(client, incident_id)
    if view.pending is None:
        state = view.status.value if view.status else view.execution.lower()
        raise IncidentError(
            f"incident {incident_id} is {state}; there is no plan awaiting a decision"
        )
    chosen = plan_hash or view.pending.plan_hash
    decision = Decision.model_validate(
        {
            "approve": approve,
            "plan_hash": chosen,
            "identity": identity,
            "channel": channel,
            "reason": reason,
        }
    )
    handle = client.get_workflow_handle(incident_id)
    try:
        result = await handle.execute_update("decide", decision, result_type=DecideResult)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = getattr(cause, "message", None) or str(cause or exc)
        raise IncidentError(f"refused: {message}") from exc
    except RPCError as exc:
        raise _explain(incident_id, exc) from exc
    if not approve:
        return f"rejected plan {chosen} of {incident_id}"
    needed = result.approvals_needed
    if needed:
        return (
            f"approved plan {chosen} of {incident_id}; {needed} more approval(s) needed "
            "before it runs"
        )
    return f"approved plan {chosen} of {incident_id}; it runs now"


def _explain(incident_id: str, exc: RPCError) -> IncidentError:
    if exc.status is RPCStatusCode.NOT_FOUND:
        return IncidentError(f"no incident {incident_id!r}; `aiops incidents list` shows them")
    if "already completed" in exc.message:
        return IncidentError(f"incident {incident_id} is already closed; nothing to decide")
    return IncidentError(f"Temporal could not answer for {incident_id}: {exc.message}")
