"""The one client of IncidentWorkflow: open or join, read, and decide.

Every front door (CLI, MCP, Slack, the Alertmanager webhook, the detection loop's intake, the
lab evaluation) talks to incidents through this class: incidents are opened only by
signal-with-start, queries go through the workflow's own methods (typed results), and a
refused decision comes back as the exception its ApplicationError type names.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from aiops.activities.contracts import RulesSnapshot
from aiops.domain import (
    Anomaly,
    ApprovalRequest,
    AuditEntry,
    DecideResult,
    Incident,
    IncidentReport,
    IncidentStatus,
    RcaReport,
    RemediationPlan,
)
from aiops.incidents.errors import (
    IncidentClosedError,
    IncidentError,
    IncidentNotFoundError,
    NothingToDecideError,
    TemporalError,
    refusal,
)
from aiops.incidents.signing import DecisionSigner
from aiops.policy.evaluate import ActionRecord
from workflows.incident import IncidentWorkflow
from workflows.incident_messages import ADD_ANOMALIES, AnomalyBatch, IncidentInput

INCIDENTS = "WorkflowType = 'IncidentWorkflow'"
Handle = WorkflowHandle[IncidentWorkflow, IncidentReport]


@dataclass(frozen=True)
class IncidentSummary:
    id: str
    run_id: str
    execution: str
    started_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class LiveState:
    """An incident run as its queries answer now (empty where it did not answer)."""

    status: IncidentStatus | None = None
    rca: RcaReport | None = None
    plan: RemediationPlan | None = None
    pending: ApprovalRequest | None = None
    audit: list[AuditEntry] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    joined: list[Anomaly] = field(default_factory=list)


@dataclass(frozen=True)
class IncidentView:
    id: str
    run_id: str
    execution: str
    status: IncidentStatus | None
    pending: ApprovalRequest | None
    report: IncidentReport | None


@dataclass(frozen=True)
class DecideOutcome:
    """What the workflow made of a decision, in words every front door uses."""

    incident_id: str
    plan_hash: str
    approve: bool
    result: DecideResult

    @property
    def message(self) -> str:
        r, plan = self.result, f"plan {self.plan_hash} of {self.incident_id}"
        if not self.approve:
            return f"rejected {plan} as {r.decided_by}; nothing runs"
        if r.status is IncidentStatus.REJECTED:
            return (
                f"your approval of {plan} counted as {r.decided_by}, but {r.rejected_by} "
                "rejected it at the same moment; nothing runs"
            )
        if r.status is IncidentStatus.AWAITING_APPROVAL:
            return (
                f"approved {plan} as {r.decided_by}; {r.approvals_needed} more approval(s) "
                "needed before it runs"
            )
        if r.status is IncidentStatus.EXECUTING:
            return f"approved {plan} as {r.decided_by}; it runs now"
        return (
            f"approved {plan} as {r.decided_by}, but the incident closed as {r.status.value} "
            "before running it (see its audit trail)"
        )


class IncidentClient:
    def __init__(self, client: Client, task_queue: str = "aiops") -> None:
        self.temporal = client
        self.task_queue = task_queue

    def handle(self, incident_id: str, run_id: str | None = None) -> Handle:
        return self.temporal.get_workflow_handle_for(
            IncidentWorkflow.run, incident_id, run_id=run_id
        )

    async def open_or_join(
        self, incident: Incident, rules: RulesSnapshot, *, index: bool, settle_s: float = 30.0
    ) -> Handle:
        """Start the incident, or add its anomalies to the run of the same id still open
        (signal-with-start: the only way incidents are opened)."""
        return await self.temporal.start_workflow(
            IncidentWorkflow.run,
            IncidentInput(incident=incident, rules=rules, index=index, settle_s=settle_s),
            id=incident.id,
            task_queue=self.task_queue,
            start_signal=ADD_ANOMALIES,
            start_signal_args=[AnomalyBatch(anomalies=incident.anomalies, notes=incident.notes)],
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )

    async def running(self, incident_id: str) -> bool:
        """Whether a run of this incident is open now."""
        try:
            desc = await self.handle(incident_id).describe()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return False
            raise explain(incident_id, exc) from exc
        return desc.status is WorkflowExecutionStatus.RUNNING

    async def find(self, limit: int = 50, query: str = "") -> list[IncidentSummary]:
        found = []
        where = f"{INCIDENTS} AND {query}" if query else INCIDENTS
        async for wf in self.temporal.list_workflows(where, limit=limit):
            found.append(
                IncidentSummary(
                    id=wf.id,
                    run_id=wf.run_id,
                    execution=wf.status.name if wf.status else "UNKNOWN",
                    started_at=wf.start_time,
                    closed_at=wf.close_time,
                )
            )
        return found

    async def show(self, incident_id: str) -> IncidentView:
        handle = self.handle(incident_id)
        try:
            desc = await handle.describe()
            run = self.handle(incident_id, desc.run_id)
            status = await run.query(IncidentWorkflow.status)
            pending = await run.query(IncidentWorkflow.pending_approval)
            report = None
            if desc.status is WorkflowExecutionStatus.COMPLETED:
                report = await run.result()
        except RPCError as exc:
            raise explain(incident_id, exc) from exc
        return IncidentView(
            id=incident_id,
            run_id=desc.run_id,
            execution=desc.status.name if desc.status else "UNKNOWN",
            status=status,
            pending=pending,
            report=report,
        )

    async def state(
        self, incident_id: str, run_id: str | None = None, rpc_timeout: timedelta | None = None
    ) -> LiveState:
        """Every query of one run at once (each is a round trip through a worker)."""
        run = self.handle(incident_id, run_id)
        try:
            status, rca, plan, pending = await asyncio.gather(
                run.query(IncidentWorkflow.status, rpc_timeout=rpc_timeout),
                run.query(IncidentWorkflow.rca, rpc_timeout=rpc_timeout),
                run.query(IncidentWorkflow.plan, rpc_timeout=rpc_timeout),
                run.query(IncidentWorkflow.pending_approval, rpc_timeout=rpc_timeout),
            )
            audit, actions, joined = await asyncio.gather(
                run.query(IncidentWorkflow.audit, rpc_timeout=rpc_timeout),
                run.query(IncidentWorkflow.actions, rpc_timeout=rpc_timeout),
                run.query(IncidentWorkflow.joined_anomalies, rpc_timeout=rpc_timeout),
            )
        except (RPCError, WorkflowQueryFailedError) as exc:
            raise TemporalError(
                f"incident {incident_id} did not answer its queries (is a worker running?): "
                f"{first_line(str(exc))}"
            ) from exc
        return LiveState(status, rca, plan, pending, audit, actions, joined)

    async def pending(self, incident_id: str) -> ApprovalRequest | None:
        """The request waiting for a decision in the open run, if any (raises what Temporal
        raises: the caller decides whether a closed or missing incident matters)."""
        return await self.handle(incident_id).query(IncidentWorkflow.pending_approval)

    async def actions(self, incident_id: str, run_id: str | None) -> list[ActionRecord]:
        return await self.handle(incident_id, run_id).query(IncidentWorkflow.actions)

    async def decide(
        self,
        incident_id: str,
        signer: DecisionSigner,
        *,
        approve: bool,
        principal: str | None = None,
        plan_hash: str | None = None,
        reason: str = "",
    ) -> DecideOutcome:
        """Sign and send a decision on the plan awaiting one. Without `plan_hash` it is the
        plan pending now; with it, the decision holds only while that is the pending plan.
        The workflow's validator has the last word; its refusals raise."""
        try:
            desc = await self.handle(incident_id).describe()
        except RPCError as exc:
            raise explain(incident_id, exc) from exc
        run = self.handle(incident_id, desc.run_id)
        if desc.status is not WorkflowExecutionStatus.RUNNING:
            closed = desc.status.name.lower() if desc.status else "closed"
            if desc.status is WorkflowExecutionStatus.COMPLETED:
                closed = (await run.result()).status.value
            raise IncidentClosedError(
                f"incident {incident_id} is already closed ({closed}); nothing to decide"
            )
        try:
            pending = await run.query(IncidentWorkflow.pending_approval)
            if pending is None:
                status = await run.query(IncidentWorkflow.status)
                raise NothingToDecideError(
                    f"incident {incident_id} is {status.value}; there is no plan awaiting a "
                    "decision"
                )
            chosen = plan_hash or pending.plan_hash
            decision = signer.sign(
                incident_id=incident_id,
                run_id=desc.run_id,
                plan_hash=chosen,
                approve=approve,
                reason=reason,
                principal=principal,
            )
            # The SDK types an async update's result as its coroutine; it is the DecideResult.
            result = cast(DecideResult, await run.execute_update(IncidentWorkflow.decide, decision))
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            kind = cause.type if isinstance(cause, ApplicationError) else None
            message = getattr(cause, "message", None) or str(cause or exc)
            raise refusal(kind, message) from exc
        except RPCError as exc:
            raise explain(incident_id, exc) from exc
        return DecideOutcome(incident_id, chosen, approve, result)


def explain(incident_id: str, exc: RPCError) -> IncidentError:
    if exc.status is RPCStatusCode.NOT_FOUND:
        return IncidentNotFoundError(f"no incident {incident_id!r}")
    if exc.status is RPCStatusCode.INVALID_ARGUMENT:
        return IncidentNotFoundError(f"{incident_id!r} is not a valid incident id")
    if "already completed" in exc.message:
        return IncidentClosedError(f"incident {incident_id} is already closed; nothing to decide")
    return TemporalError(f"Temporal could not answer for {incident_id}: {first_line(exc.message)}")


def first_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:160]
