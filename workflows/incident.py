"""IncidentWorkflow: one durable workflow per incident; its history is the audit trail.

investigate → plan → policy → dry-run → approval gate (`decide` update) → execute → close.
Verification and compensation join in when the executor lands; keep this shape.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from aiops.activities.contracts import (
        DRY_RUN_PLAN,
        EXECUTE_STEP,
        INVESTIGATE_INCIDENT,
        PLAN_REMEDIATION,
        DryRunInput,
        DryRunResult,
        ExecuteStepInput,
        InvestigateInput,
        PlanInput,
    )
    from aiops.domain import (
        ApprovalRequest,
        AuditEntry,
        DecideResult,
        Decision,
        Incident,
        IncidentReport,
        IncidentStatus,
        PolicyDecision,
        RcaReport,
        RemediationPlan,
        StepResult,
        TimeoutAction,
    )


class IncidentInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    incident: Incident
    # The policy's verdict on approvals, decided outside the workflow from a versioned snapshot;
    # the workflow never reads files or settings.
    approval: PolicyDecision = Field(
        default_factory=lambda: PolicyDecision(allowed=True, requires_approval=True)
    )


STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=["PolicyViolation", "InvalidStep"],
)


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    def __init__(self) -> None:
        self._status = IncidentStatus.OPEN
        self._request: ApprovalRequest | None = None
        self._approved_by: list[str] = []
        self._decisions: list[Decision] = []
        self._rejected = False
        self._audit: list[AuditEntry] = []

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentReport:
        incident = inp.incident
        self._note("aiops", f"incident opened with {len(incident.anomalies)} anomalies")

        self._status = IncidentStatus.INVESTIGATING
        report = await workflow.execute_activity(
            INVESTIGATE_INCIDENT,
            InvestigateInput(incident=incident),
            result_type=RcaReport,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=STEP_RETRY,
        )
        self._note("aiops", f"investigation: {report.summary}")

        self._status = IncidentStatus.PLANNING
        plan = await workflow.execute_activity(
            PLAN_REMEDIATION,
            PlanInput(incident=incident, report=report),
            result_type=RemediationPlan,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STEP_RETRY,
        )
        decision = inp.approval
        self._note("policy", f"plan {plan.playbook_id} ({plan.plan_hash()}): {decision.reasons}")
        if plan.is_escalation or not decision.allowed:
            status = IncidentStatus.ESCALATED
            return self._close(incident, status, report, plan, decision, [])

        dry_run = await workflow.execute_activity(
            DRY_RUN_PLAN,
            DryRunInput(incident_id=incident.id, plan=plan),
            result_type=DryRunResult,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=STEP_RETRY,
        )

        if decision.requires_approval:
            outcome = await self._await_approval(incident, plan, decision, dry_run.diffs)
            if outcome is not None:
                return self._close(incident, outcome, report, plan, decision, [])

        self._status = IncidentStatus.EXECUTING
        results: list[StepResult] = []
        for index, step in enumerate(plan.steps):
            result = await workflow.execute_activity(
                EXECUTE_STEP,
                ExecuteStepInput(
                    incident_id=incident.id, plan_hash=plan.plan_hash(), step_index=index,
                    step=step,
                ),
                result_type=StepResult,
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=STEP_RETRY,
            )
            results.append(result)
            self._note("aiops", f"step {index} {step.action} on {step.target}: {result.message}")
            if not result.ok:
                return self._close(incident, IncidentStatus.FAILED, report, plan, decision, results)
        return self._close(incident, IncidentStatus.RESOLVED, report, plan, decision, results)

    async def _await_approval(
        self,
        incident: Incident,
        plan: RemediationPlan,
        decision: PolicyDecision,
        diffs: list[str],
    ) -> IncidentStatus | None:
        """Wait for enough approvals; return the closing status if it ends otherwise."""
        now = workflow.now()
        self._request = ApprovalRequest(
            incident_id=incident.id,
            plan_hash=plan.plan_hash(),
            plan=plan,
            decision=decision,
            requested_at=now,
            expires_at=now + timedelta(seconds=decision.approval_timeout_s),
            dry_run=diffs,
        )
        self._status = IncidentStatus.AWAITING_APPROVAL
        self._note("aiops", f"approval requested for plan {plan.plan_hash()}")
        try:
            await workflow.wait_condition(
                lambda: self._rejected or self._enough_approvals(),
                timeout=timedelta(seconds=decision.approval_timeout_s),
            )
        except TimeoutError:
            self._note("aiops", f"approval expired; policy says {decision.on_timeout.value}")
            if decision.on_timeout is TimeoutAction.ESCALATE:
                return IncidentStatus.ESCALATED
            return IncidentStatus.REJECTED
        if self._rejected:
            return IncidentStatus.REJECTED
        return None

    def _enough_approvals(self) -> bool:
        needed = self._request.decision.approvals_required if self._request else 1
        return len(self._approved_by) >= max(needed, 1)

    @workflow.update(name="decide")
    async def decide(self, decision: Decision) -> DecideResult:
        self._decisions.append(decision)
        if decision.approve:
            self._approved_by.append(decision.identity)
            self._note(decision.identity, f"approved plan {decision.plan_hash} via "
                       f"{decision.channel}")
        else:
            self._rejected = True
            self._note(decision.identity, f"rejected plan {decision.plan_hash} via "
                       f"{decision.channel}: {decision.reason}")
        return self._decide_result(accepted=True)

    @decide.validator
    def validate_decide(self, decision: Decision) -> None:
        request = self._request
        if request is None or self._status is not IncidentStatus.AWAITING_APPROVAL:
            raise ApplicationError(
                f"incident is {self._status.value}, not awaiting approval; nothing to decide",
                type="NotAwaitingApproval", non_retryable=True,
            )
        if workflow.now() >= request.expires_at:
            raise ApplicationError(
                f"the approval request expired at {request.expires_at.isoformat()}",
                type="ApprovalExpired", non_retryable=True,
            )
        if decision.plan_hash != request.plan_hash:
            raise ApplicationError(
                f"plan hash {decision.plan_hash} does not match the pending plan "
                f"{request.plan_hash}; re-read the incident and decide on the current plan",
                type="PlanHashMismatch", non_retryable=True,
            )
        if decision.identity not in request.decision.approvers:
            raise ApplicationError(
                f"{decision.identity} may not decide on this incident; the policy allows: "
                f"{', '.join(request.decision.approvers) or 'nobody'}",
                type="NotAnApprover", non_retryable=True,
            )
        if decision.approve and decision.identity in self._approved_by:
            raise ApplicationError(
                f"{decision.identity} has already approved; another approver is needed",
                type="AlreadyApproved", non_retryable=True,
            )

    @workflow.query(name="status")
    def status(self) -> IncidentStatus:
        return self._status

    @workflow.query(name="pending_approval")
    def pending_approval(self) -> ApprovalRequest | None:
        if self._status is not IncidentStatus.AWAITING_APPROVAL or self._request is None:
            return None
        return self._request.model_copy(update={"approved_by": list(self._approved_by)})

    @workflow.query(name="audit")
    def audit(self) -> list[AuditEntry]:
        return list(self._audit)

    def _decide_result(self, accepted: bool) -> DecideResult:
        needed = self._request.decision.approvals_required if self._request else 1
        return DecideResult(
            accepted=accepted, status=self._status, approved_by=list(self._approved_by),
            approvals_needed=max(max(needed, 1) - len(self._approved_by), 0),
        )

    def _note(self, actor: str, what: str) -> None:
        self._audit.append(AuditEntry(at=workflow.now(), actor=actor, what=what))

    def _close(
        self,
        incident: Incident,
        status: IncidentStatus,
        report: RcaReport,
        plan: RemediationPlan,
        decision: PolicyDecision,
        steps: list[StepResult],
    ) -> IncidentReport:
        self._status = status
        self._note("aiops", f"incident closed: {status.value}")
        closed_at: datetime = workflow.now()
        return IncidentReport(
            incident_id=incident.id, status=status, rca=report, plan=plan, policy=decision,
            decisions=list(self._decisions), steps=steps, audit=list(self._audit),
            opened_at=incident.opened_at, closed_at=closed_at,
        )
