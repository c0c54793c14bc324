"""Incident and approval state for /metrics, read from Temporal's visibility.

The incident workflows themselves are the truth; counting them here (instead of in the workflow
code) keeps their histories untouched. Open incidents are listed and grouped by their
`AiopsStatus` search attribute; closed ones are counted per final status within the namespace's
retention. Pending approvals are asked for their request (through the incident client) to give
their age and whether they are past expiry. Every read is bounded, so a storm of incidents costs
one page of results per cycle, not one call per incident.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError

from aiops.domain import ApprovalRequest, IncidentStatus
from aiops.incidents.client import IncidentClient
from aiops.logs import get_logger
from aiops.telemetry import metrics

log = get_logger(__name__)

WORKFLOW_TYPE = "IncidentWorkflow"
STATUS = SearchAttributeKey.for_keyword("AiopsStatus")
CLOSED_STATUSES = (
    IncidentStatus.RESOLVED,
    IncidentStatus.REJECTED,
    IncidentStatus.ESCALATED,
    IncidentStatus.FAILED,
    IncidentStatus.ROLLED_BACK,
)
MAX_OPEN = 1000
MAX_APPROVALS = 100


async def collect(client: Client, now: datetime | None = None) -> None:
    """One read of the incidents into the gauges; raises RPCError when Temporal says no."""
    now = now or datetime.now(UTC)
    open_by_status = {status.value: 0 for status in IncidentStatus}
    waiting: list[str] = []
    listed = client.list_workflows(
        f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'", limit=MAX_OPEN
    )
    async for execution in listed:
        status = execution.typed_search_attributes.get(STATUS) or IncidentStatus.OPEN.value
        open_by_status[status] = open_by_status.get(status, 0) + 1
        if status == IncidentStatus.AWAITING_APPROVAL.value and len(waiting) < MAX_APPROVALS:
            waiting.append(execution.id)
    for status, count in open_by_status.items():
        metrics.INCIDENTS.labels(status, "true").set(count)
    for closed in CLOSED_STATUSES:
        counted = await client.count_workflows(
            f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus != 'Running' "
            f"AND AiopsStatus = '{closed.value}'"
        )
        metrics.INCIDENTS.labels(closed.value, "false").set(counted.count)
    incidents = IncidentClient(client)
    requests = await asyncio.gather(*(_pending(incidents, wid) for wid in waiting))
    pending = [r for r in requests if r is not None]
    ages = [(now - r.requested_at).total_seconds() for r in pending]
    metrics.APPROVALS_PENDING.set(len(pending))
    metrics.APPROVAL_OLDEST_SECONDS.set(max(ages, default=0.0))
    metrics.APPROVALS_OVERDUE.set(sum(1 for r in pending if r.expires_at < now))


async def _pending(incidents: IncidentClient, workflow_id: str) -> ApprovalRequest | None:
    try:
        request = await incidents.pending(workflow_id)
    except (RPCError, WorkflowQueryFailedError, ValueError):
        return None  # decided or closed between the listing and the query
    return request


async def keep_collecting(client: Client, interval_s: float = 30.0) -> None:
    """Refresh the gauges until cancelled; a failed read is counted and retried next cycle."""
    complained = False
    while True:
        try:
            await collect(client)
            complained = False
        except RPCError as exc:
            metrics.VISIBILITY_ERRORS.inc()
            if not complained:
                log.warning(
                    "incident metrics unavailable",
                    error=exc.message,
                    hint="register the search attributes (temporal/setup-namespace.sh)",
                )
                complained = True
        await asyncio.sleep(interval_s)
