"""IncidentWorkflow: one durable workflow per incident; its history is the audit trail.

investigate → observe → plan → policy → preconditions → dry-run → approval gate (`decide`) →
execute → verify → compensate when verification fails → close with an IncidentReport.

Policy is evaluated here, purely, on the snapshot the workflow was started with; activities only
gather facts and act.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from aiops.activities.contracts import (
        CHECK_PRECONDITIONS,
        DRY_RUN_PLAN,
        EXECUTE_STEP,
        INVESTIGATE_INCIDENT,
        OBSERVE_TARGET,
        PLAN_REMEDIATION,
        VERIFY_REMEDIATION,
        DryRunInput,
        DryRunResult,
        ExecuteStepInput,
        InvestigateInput,
        Observation,
        ObserveInput,
        PlanInput,
        PlanResult,
        PreconditionsInput,
        PreconditionsResult,
        RulesSnapshot,
        VerifyInput,
        VerifyResult,
    )
    from aiops.activities.notify import (
        NOTIFY_APPROVAL_REQUEST,
        NOTIFY_PROGRESS,
        NotifyApprovalInput,
        NotifyProgressInput,
    )
    from aiops.domain import (
        Anomaly,
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
        Step,
        StepResult,
        TimeoutAction,
    )
    from aiops.policy import ActionRecord, PolicyContext, evaluate, hold_to_evidence


__all__ = ["AnomalyBatch", "IncidentInput", "IncidentWorkflow", "RulesSnapshot"]


class IncidentInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    incident: Incident
    rules: RulesSnapshot
    kill_switch: bool = False
    # Upsert the Aiops* search attributes only where the namespace has them: on a namespace
    # without them every upsert would fail the workflow task and stall the incident.
    index: bool = True
    # When the first investigation finds no remedy within this long of the anomaly's start, the
    # workflow investigates once more when that much time has passed (see `run`).
    settle_s: float = 30.0


class AnomalyBatch(BaseModel):
    """Anomalies that join an open incident (the `add_anomalies` signal)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    anomalies: list[Anomaly]


def _anomaly_key(anomaly: Anomaly) -> str:
    return f"{anomaly.fingerprint()}@{anomaly.start.isoformat()}"


SERVICE = SearchAttributeKey.for_keyword("AiopsService")
NAMESPACE = SearchAttributeKey.for_keyword("AiopsNamespace")
SEVERITY = SearchAttributeKey.for_keyword("AiopsSeverity")
FAULT = SearchAttributeKey.for_keyword("AiopsFault")
STATUS = SearchAttributeKey.for_keyword("AiopsStatus")
PLAYBOOK = SearchAttributeKey.for_keyword("AiopsPlaybook")

NOTIFY_PATCH = "notify-v1"
SETTLE_PATCH = "settle-v1"
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)


def _cause(exc: ActivityError) -> str:
    """What went wrong in an activity, in the words of the error it raised."""
    cause = exc.cause
    return getattr(cause, "message", None) or str(cause or exc)


def _fault_of(report: RcaReport) -> str:
    return report.top.fault.value if report.top is not None else "no suspect"


READ_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[
        "InvalidStepError",
        "TargetNotFoundError",
        "ActionRefusedError",
        "PermissionDeniedError",
        "KubernetesNotConfigured",
    ],
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
        self._actions: list[ActionRecord] = []
        self._steps: list[StepResult] = []
        self._index = False
        self._known: set[str] = set()
        self._joined: list[Anomaly] = []
        self._started = False
        self._expired = False
        self._rejected_by = ""
        self._rca: RcaReport | None = None
        self._plan: RemediationPlan | None = None

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentReport:
        incident = inp.incident
        self._index = inp.index
        self._known.update(_anomaly_key(a) for a in incident.anomalies)
        self._joined = [a for a in self._joined if _anomaly_key(a) not in self._known]
        self._started = True
        self._set_status(IncidentStatus.INVESTIGATING)
        self._upsert(
            [
                SERVICE.value_set(incident.service or ""),
                NAMESPACE.value_set(incident.namespace or ""),
                SEVERITY.value_set(incident.severity.value),
            ]
        )
        self._note("aiops", f"incident opened with {len(incident.anomalies)} anomalies")
        self._protected = sorted(inp.rules.policy.protected)  # left alone by node steps
        report, observation, planned = await self._investigate_and_plan(inp, incident)
        wait = (incident.opened_at + timedelta(seconds=inp.settle_s)) - workflow.now()
        if planned.plan.is_escalation and wait > timedelta(0) and workflow.patched(SETTLE_PATCH):
            # In the first seconds of a fault the rates over the window have barely moved and
            # its symptoms (errors, latency) stand out before its cause (CPU, load, memory):
            # look once more when the evidence has settled, with the anomalies that joined.
            self._note(
                "aiops",
                f"no remedy for the evidence so far "
                f"({_fault_of(report)}); looking again in {wait.total_seconds():.0f} s",
            )
            await workflow.sleep(wait)
            self._set_status(IncidentStatus.INVESTIGATING)
            incident = incident.model_copy(
                update={"anomalies": [*incident.anomalies, *self._joined]}
            )
            report, observation, planned = await self._investigate_and_plan(inp, incident)
        plan = planned.plan
        decision = evaluate(plan, ctx := self._policy_context(inp, observation), inp.rules.policy)
        if planned.baseline is not None and workflow.patched("advice-floor-v1"):
            decision = hold_to_evidence(decision, plan, planned.baseline, ctx, inp.rules.policy)
        self._note(
            "policy",
            f"plan {plan.playbook_id} ({plan.plan_hash()}): "
            f"{'allowed' if decision.allowed else 'denied'}; " + "; ".join(decision.reasons),
        )
        if plan.is_escalation or not decision.allowed or not plan.steps:
            return await self._finish(incident, IncidentStatus.ESCALATED, report, plan, decision)

        if planned.preconditions:
            checks = await workflow.execute_activity(
                CHECK_PRECONDITIONS,
                PreconditionsInput(incident_id=incident.id, checks=planned.preconditions),
                result_type=PreconditionsResult,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=READ_RETRY,
            )
            self._note("aiops", "preconditions: " + "; ".join(checks.findings))
            if not checks.passed:
                return await self._finish(
                    incident, IncidentStatus.ESCALATED, report, plan, decision
                )

        try:
            dry_run = await workflow.execute_activity(
                DRY_RUN_PLAN,
                DryRunInput(incident_id=incident.id, plan=plan, protected=self._protected),
                result_type=DryRunResult,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=STEP_RETRY,
            )
        except ActivityError as exc:
            # The executor refused the plan before anything ran (e.g. an undo that would bring
            # back a release aiops removed): a person decides, the incident does not fail.
            self._note("aiops", f"dry-run refused, escalating: {_cause(exc)}")
            return await self._finish(incident, IncidentStatus.ESCALATED, report, plan, decision)
        self._note("aiops", "dry-run: " + "; ".join(dry_run.diffs))

        if decision.requires_approval:
            outcome = await self._await_approval(incident, report, plan, decision, dry_run.diffs)
            if outcome is not None:
                return await self._finish(incident, outcome, report, plan, decision)

        self._set_status(IncidentStatus.EXECUTING)
        if not await self._run_steps(incident, plan, plan.steps, "step"):
            return await self._finish(incident, IncidentStatus.FAILED, report, plan, decision)

        if plan.verification is None:
            return await self._finish(incident, IncidentStatus.RESOLVED, report, plan, decision)
        self._set_status(IncidentStatus.VERIFYING)
        verdict = await workflow.execute_activity(
            VERIFY_REMEDIATION,
            VerifyInput(incident_id=incident.id, verification=plan.verification),
            result_type=VerifyResult,
            start_to_close_timeout=timedelta(seconds=plan.verification.timeout_s + 60),
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=READ_RETRY,
        )
        self._note("aiops", f"verification: {verdict.detail}")
        if verdict.verified:
            return await self._finish(
                incident, IncidentStatus.RESOLVED, report, plan, decision, verified=True
            )
        self._mark_outcome("failed")
        if plan.compensation:
            await self._run_steps(incident, plan, plan.compensation, "compensation")
            return await self._finish(
                incident, IncidentStatus.ROLLED_BACK, report, plan, decision, verified=False
            )
        return await self._finish(
            incident, IncidentStatus.ESCALATED, report, plan, decision, verified=False
        )

    async def _investigate_and_plan(
        self, inp: IncidentInput, incident: Incident
    ) -> tuple[RcaReport, Observation, PlanResult]:
        report = await workflow.execute_activity(
            INVESTIGATE_INCIDENT,
            InvestigateInput(incident=incident),
            result_type=RcaReport,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=READ_RETRY,
        )
        self._rca = report
        self._note("aiops", f"root cause: {report.summary}")
        if report.top is not None:
            self._upsert([FAULT.value_set(report.top.fault.value)])

        self._set_status(IncidentStatus.PLANNING)
        observation = await workflow.execute_activity(
            OBSERVE_TARGET,
            ObserveInput(incident_id=incident.id, report=report, namespace=incident.namespace),
            result_type=Observation,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=READ_RETRY,
        )
        planned = await workflow.execute_activity(
            PLAN_REMEDIATION,
            PlanInput(
                incident=incident,
                report=report,
                playbooks=inp.rules.playbooks,
                observed=observation.observed,
            ),
            result_type=PlanResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=READ_RETRY,
        )
        self._plan = planned.plan
        self._upsert([PLAYBOOK.value_set(planned.plan.playbook_id)])
        return report, observation, planned

    def _policy_context(self, inp: IncidentInput, observation: Observation) -> PolicyContext:
        target = observation.target
        replicas = observation.observed.replicas
        return PolicyContext(
            now=workflow.now(),
            history=observation.history,
            current_replicas={target: replicas} if target and replicas is not None else {},
            pdbs=observation.pdbs,
            labels={target: observation.labels} if target else {},
            kill_switch=inp.kill_switch,
        )

    async def _run_steps(
        self, incident: Incident, plan: RemediationPlan, steps: list[Step], kind: str
    ) -> bool:
        for index, step in enumerate(steps):
            try:
                result = await workflow.execute_activity(
                    EXECUTE_STEP,
                    ExecuteStepInput(
                        incident_id=incident.id,
                        plan_hash=plan.plan_hash(),
                        step_index=index,
                        step=step,
                        protected=self._protected,
                    ),
                    result_type=StepResult,
                    start_to_close_timeout=timedelta(minutes=10),
                    heartbeat_timeout=timedelta(seconds=60),
                    retry_policy=STEP_RETRY,
                )
            except ActivityError as exc:
                result = StepResult(
                    action=step.action,
                    target=step.target,
                    ok=False,
                    changed=False,
                    message=_cause(exc),
                )
            self._steps.append(result)
            self._actions.append(
                ActionRecord(
                    at=workflow.now(),
                    action=step.action,
                    target=step.target,
                    incident_id=incident.id,
                    outcome="succeeded" if result.ok else "failed",
                )
            )
            self._note(
                "aiops", f"{kind} {index + 1} {step.action} on {step.target}: {result.message}"
            )
            await self._progress(
                f"{kind}-{index + 1}",
                f"{'✅' if result.ok else '❌'} {kind} {index + 1}: "
                f"{step.action} on {step.target}: {result.message}",
            )
            if not result.ok:
                return False
        return True

    def _mark_outcome(self, outcome: str) -> None:
        self._actions = [a.model_copy(update={"outcome": outcome}) for a in self._actions]

    async def _await_approval(
        self,
        incident: Incident,
        report: RcaReport,
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
        self._set_status(IncidentStatus.AWAITING_APPROVAL)
        self._note(
            "aiops",
            f"approval requested for plan {plan.plan_hash()} from "
            f"{', '.join(decision.approvers) or 'nobody'}",
        )
        await self._notify(
            NOTIFY_APPROVAL_REQUEST,
            NotifyApprovalInput(request=self._request, report=report, incident=incident),
        )
        try:
            await workflow.wait_condition(
                lambda: self._rejected or self._enough_approvals(),
                timeout=timedelta(seconds=decision.approval_timeout_s),
            )
        except TimeoutError:
            self._expired = True
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

    @workflow.signal(name="add_anomalies")
    def add_anomalies(self, batch: AnomalyBatch) -> None:
        """Later anomalies of the same incident join it (recorded; the plan is not redone)."""
        fresh = [a for a in batch.anomalies if _anomaly_key(a) not in self._known]
        if self._started:
            self._known.update(_anomaly_key(a) for a in fresh)
        self._joined.extend(fresh)
        if fresh and self._started:
            entities = sorted({a.entity for a in fresh})
            self._note("detector", f"{len(fresh)} more anomalies joined: {', '.join(entities)}")

    @workflow.query(name="joined_anomalies")
    def joined_anomalies(self) -> list[Anomaly]:
        return list(self._joined)

    @workflow.update(name="decide")
    async def decide(self, decision: Decision) -> DecideResult:
        self._decisions.append(decision)
        if decision.approve:
            self._approved_by.append(decision.identity)
            self._note(
                decision.identity, f"approved plan {decision.plan_hash} via {decision.channel}"
            )
        else:
            self._rejected = True
            self._rejected_by = decision.identity
            self._note(
                decision.identity,
                f"rejected plan {decision.plan_hash} via {decision.channel}: {decision.reason}",
            )
        return self._decide_result(accepted=True)

    @decide.validator
    def validate_decide(self, decision: Decision) -> None:
        request = self._request
        if request is None or self._status is not IncidentStatus.AWAITING_APPROVAL:
            raise ApplicationError(
                f"incident is {self._status.value}, not awaiting approval; nothing to decide",
                type="NotAwaitingApproval",
                non_retryable=True,
            )
        if workflow.now() >= request.expires_at:
            raise ApplicationError(
                f"the approval request expired at {request.expires_at.isoformat()}",
                type="ApprovalExpired",
                non_retryable=True,
            )
        if decision.plan_hash != request.plan_hash:
            raise ApplicationError(
                f"plan hash {decision.plan_hash} does not match the pending plan "
                f"{request.plan_hash}; re-read the incident and decide on the current plan",
                type="PlanHashMismatch",
                non_retryable=True,
            )
        if decision.identity not in request.decision.approvers:
            raise ApplicationError(
                f"{decision.identity} may not decide on this incident; the policy allows: "
                f"{', '.join(request.decision.approvers) or 'nobody'}",
                type="NotAnApprover",
                non_retryable=True,
            )
        if decision.approve and decision.identity in self._approved_by:
            raise ApplicationError(
                f"{decision.identity} has already approved; another approver is needed",
                type="AlreadyApproved",
                non_retryable=True,
            )

    @workflow.query(name="status")
    def status(self) -> IncidentStatus:
        return self._status

    @workflow.query(name="pending_approval")
    def pending_approval(self) -> ApprovalRequest | None:
        if self._status is not IncidentStatus.AWAITING_APPROVAL or self._request is None:
            return None
        return self._request.model_copy(update={"approved_by": list(self._approved_by)})

    @workflow.query(name="rca")
    def rca(self) -> RcaReport | None:
        """The root-cause report once the investigation is done (before the incident closes)."""
        return self._rca

    @workflow.query(name="plan")
    def plan(self) -> RemediationPlan | None:
        """The remediation plan once planned (also when it needs no approval)."""
        return self._plan

    @workflow.query(name="audit")
    def audit(self) -> list[AuditEntry]:
        return list(self._audit)

    @workflow.query(name="actions")
    def actions(self) -> list[ActionRecord]:
        """Mutations this incident ran, for other incidents' budgets and cooldowns."""
        return list(self._actions)

    def _decide_result(self, accepted: bool) -> DecideResult:
        needed = self._request.decision.approvals_required if self._request else 1
        return DecideResult(
            accepted=accepted,
            status=self._status,
            approved_by=list(self._approved_by),
            approvals_needed=max(max(needed, 1) - len(self._approved_by), 0),
        )

    def _set_status(self, status: IncidentStatus) -> None:
        self._status = status
        self._upsert([STATUS.value_set(status.value)])

    def _upsert(self, updates: list[SearchAttributeUpdate[str]]) -> None:
        if self._index:
            workflow.upsert_search_attributes(updates)

    def _note(self, actor: str, what: str) -> None:
        self._audit.append(AuditEntry(at=workflow.now(), actor=actor, what=what))

    async def _notify(self, activity_name: str, payload: BaseModel) -> None:
        """Tell the people watching (Slack); never let a notification failure block the
        incident. Histories recorded before notifications existed replay without them."""
        if not workflow.patched(NOTIFY_PATCH):
            return
        try:
            await workflow.execute_activity(
                activity_name,
                payload,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as exc:
            self._note("aiops", f"notification failed: {exc.cause or exc}")

    async def _progress(
        self, key: str, text: str, outcome: str | None = None, detail: str = ""
    ) -> None:
        if self._request is None:  # only incidents that asked a person have a message
            return
        await self._notify(
            NOTIFY_PROGRESS,
            NotifyProgressInput(
                incident_id=self._request.incident_id,
                plan_hash=self._request.plan_hash,
                key=key,
                text=text,
                outcome=outcome,
                approved_by=list(self._approved_by),
                detail=detail,
            ),
        )

    async def _finish(
        self,
        incident: Incident,
        status: IncidentStatus,
        report: RcaReport,
        plan: RemediationPlan,
        decision: PolicyDecision,
        verified: bool | None = None,
    ) -> IncidentReport:
        closed = self._close(incident, status, report, plan, decision, verified)
        outcome = "expired" if self._expired else status.value
        detail = f"by {self._rejected_by}" if self._rejected_by else ""
        await self._progress(
            "closed", f"incident closed: {status.value}", outcome=outcome, detail=detail
        )
        return closed

    def _close(
        self,
        incident: Incident,
        status: IncidentStatus,
        report: RcaReport,
        plan: RemediationPlan,
        decision: PolicyDecision,
        verified: bool | None = None,
    ) -> IncidentReport:
        self._set_status(status)
        self._note("aiops", f"incident closed: {status.value}")
        return IncidentReport(
            incident_id=incident.id,
            status=status,
            rca=report,
            plan=plan,
            policy=decision,
            decisions=list(self._decisions),
            steps=list(self._steps),
            verified=verified,
            audit=list(self._audit),
            opened_at=incident.opened_at,
            closed_at=workflow.now(),
        )
