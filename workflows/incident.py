"""IncidentWorkflow: one durable workflow per incident; its history is the audit trail.

investigate → observe → plan → policy → preconditions → dry-run → approval gate (`decide`) →
execute (the kill switch read before every step) → verify → compensate when verification
fails → close with an IncidentReport. Anomalies that join after planning are investigated, and
those pointing to another root cause open a follow-up incident.

Policy is evaluated here, purely, on the snapshot the workflow was started with; activities only
gather facts and act.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from aiops.activities.contracts import (
        CHECK_PRECONDITIONS,
        DRY_RUN_PLAN,
        OBSERVE_TARGET,
        PLAN_REMEDIATION,
        VERIFY_REMEDIATION,
        DryRunInput,
        DryRunResult,
        Observation,
        ObserveInput,
        PlanInput,
        PlanResult,
        PreconditionsInput,
        PreconditionsResult,
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
        TimeoutAction,
    )
    from aiops.policy.advice import hold_to_evidence
    from aiops.policy.evaluate import ActionRecord, PolicyContext, evaluate
    from aiops.policy.models import Policy, deny_all
    from workflows.arrivals import Arrivals, investigate
    from workflows.gate import ApprovalGate
    from workflows.incident_messages import (
        ADD_ANOMALIES,
        ADVICE_PATCH,
        CLOCK_PATCH,
        FAULT,
        LATE_PATCH,
        NAMESPACE,
        NOTIFY_PATCH,
        NOTIFY_RETRY,
        OUTCOME_PATCH,
        PLAYBOOK,
        READ_RETRY,
        SERVICE,
        SETTLE_PATCH,
        SEVERITY,
        STATUS,
        STEP_RETRY,
        AnomalyBatch,
        IncidentInput,
    )
    from workflows.steps import StepRunner, cause_of


__all__ = ["AnomalyBatch", "IncidentInput", "IncidentWorkflow"]

GATHER = timedelta(seconds=5)


def _set(key: SearchAttributeKey[str], value: str) -> SearchAttributeUpdate[str]:
    return key.value_set(value)


def _policy_context(inp: IncidentInput, observation: Observation) -> PolicyContext:
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


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    def __init__(self) -> None:
        self._status = IncidentStatus.OPEN
        self._gate = ApprovalGate()
        self._policy: Policy = deny_all()
        self._outcome: IncidentStatus | None = None  # what the decisions led to, for `decide`
        self._audit: list[AuditEntry] = []
        self._steps = StepRunner(self._note, self._progress)
        self._arrivals = Arrivals(self._note)
        self._index = False
        self._expired = False
        self._rca: RcaReport | None = None
        self._plan: RemediationPlan | None = None

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentReport:
        incident = inp.incident
        self._index = inp.index
        self._policy = inp.rules.policy
        self._arrivals.start(incident)
        self._set_status(IncidentStatus.INVESTIGATING)
        self._upsert(
            [
                SERVICE.value_set(incident.service or ""),
                NAMESPACE.value_set(incident.namespace or ""),
                SEVERITY.value_set(incident.severity.value),
            ]
        )
        self._note(
            "aiops",
            f"incident opened with {len(incident.anomalies)} anomalies; rules: policy "
            f"{inp.rules.policy.version()}, playbooks {inp.rules.playbooks.version()}",
        )
        for note in incident.notes:
            self._note("intake", note)
        self._steps.protected = sorted(inp.rules.policy.protected)  # left alone by node steps
        report, observation, planned = await self._investigate_and_plan(inp, incident)
        opened = incident.opened_at
        if workflow.patched(CLOCK_PATCH):
            opened = min(opened, workflow.now())  # a time from outside never stretches a wait
        wait = (opened + timedelta(seconds=inp.settle_s)) - workflow.now()
        if planned.plan.is_escalation and wait > timedelta(0) and workflow.patched(SETTLE_PATCH):
            # In the first seconds of a fault the rates over the window have barely moved and
            # its symptoms (errors, latency) stand out before its cause (CPU, load, memory):
            # look once more when the evidence has settled, with the anomalies that joined.
            fault = report.top.fault.value if report.top is not None else "no suspect"
            self._note(
                "aiops",
                f"no remedy for the evidence so far ({fault}); looking again in "
                f"{wait.total_seconds():.0f} s",
            )
            await workflow.sleep(wait)
            self._set_status(IncidentStatus.INVESTIGATING)
            joined = list(self._arrivals.joined)
            incident = incident.model_copy(update={"anomalies": [*incident.anomalies, *joined]})
            report, observation, planned = await self._investigate_and_plan(inp, incident)
            self._arrivals.reviewed = len(joined)
        plan = planned.plan
        decision = evaluate(plan, ctx := _policy_context(inp, observation), inp.rules.policy)
        if planned.baseline is not None and workflow.patched(ADVICE_PATCH):
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
                DryRunInput(incident_id=incident.id, plan=plan, protected=self._steps.protected),
                result_type=DryRunResult,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=STEP_RETRY,
            )
        except ActivityError as exc:
            # The executor refused the plan before anything ran (e.g. an undo that would bring
            # back a release aiops removed): a person decides, the incident does not fail.
            self._note("aiops", f"dry-run refused, escalating: {cause_of(exc)}")
            return await self._finish(incident, IncidentStatus.ESCALATED, report, plan, decision)
        self._note("aiops", "dry-run: " + "; ".join(dry_run.diffs))

        if decision.requires_approval:
            outcome = await self._await_approval(incident, report, plan, decision, dry_run.diffs)
            if outcome is not None:
                return await self._finish(incident, outcome, report, plan, decision)

        self._set_status(IncidentStatus.EXECUTING)
        ran = await self._steps.run(incident, plan, plan.steps, "step")
        if ran == "stopped":
            return await self._finish(incident, IncidentStatus.ESCALATED, report, plan, decision)
        if ran == "failed":
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
        self._steps.mark_outcome("failed")
        if plan.compensation:
            ran = await self._steps.run(incident, plan, plan.compensation, "compensation")
            status = IncidentStatus.ROLLED_BACK if ran == "ok" else IncidentStatus.ESCALATED
            return await self._finish(incident, status, report, plan, decision, verified=False)
        return await self._finish(
            incident, IncidentStatus.ESCALATED, report, plan, decision, verified=False
        )

    async def _investigate_and_plan(
        self, inp: IncidentInput, incident: Incident
    ) -> tuple[RcaReport, Observation, PlanResult]:
        report = await investigate(incident)
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

    async def _review_arrivals(self, incident: Incident, report: RcaReport) -> None:
        await self._arrivals.review(incident, report, self._index)

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
        gate = self._gate
        gate.request = ApprovalRequest(
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
            NotifyApprovalInput(request=gate.request, report=report, incident=incident),
        )
        late = workflow.patched(LATE_PATCH)
        while True:
            left = gate.request.expires_at - workflow.now()
            if not late:
                left = timedelta(seconds=decision.approval_timeout_s)
            try:
                if left <= timedelta(0):
                    raise TimeoutError
                await workflow.wait_condition(
                    lambda: gate.rejected or gate.enough() or (late and self._arrivals.pending()),
                    timeout=left,
                )
            except TimeoutError:
                self._expired = True
                self._note("aiops", f"approval expired; policy says {decision.on_timeout.value}")
                if decision.on_timeout is TimeoutAction.ESCALATE:
                    return IncidentStatus.ESCALATED
                return IncidentStatus.REJECTED
            if gate.rejected:
                self._outcome = IncidentStatus.REJECTED
                return IncidentStatus.REJECTED
            if gate.enough():
                return None
            # Anomalies joined: gather what else joins for a moment (a fault shows in many
            # series within seconds), unless people decide meanwhile; then investigate them.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: gate.rejected or gate.enough(), timeout=min(GATHER, left)
                )
            if not (gate.rejected or gate.enough()):
                await self._review_arrivals(incident, report)

    @workflow.signal(name=ADD_ANOMALIES)
    def add_anomalies(self, batch: AnomalyBatch) -> None:
        """Later anomalies of the same incident join it; those that join after its
        investigation are looked at too (workflows.arrivals)."""
        self._arrivals.add(batch)

    @workflow.query(name="joined_anomalies")
    def joined_anomalies(self) -> list[Anomaly]:
        return list(self._arrivals.joined)

    @workflow.update(name="decide")
    async def decide(self, decision: Decision) -> DecideResult:
        person, what = self._gate.record(decision, self._policy)
        self._note(person, what)
        if workflow.patched(OUTCOME_PATCH) and (not decision.approve or self._gate.enough()):
            # Answer with what the workflow made of it: a rejection in the same workflow task
            # wins over an approval, and a kill switch stops an approved plan.
            await workflow.wait_condition(lambda: self._decided() is not None)
        return self._gate.result(self._decided() or self._status, person)

    def _decided(self) -> IncidentStatus | None:
        """What the decisions led to: rejected, executing (a step got past the kill switch),
        or however the incident closed; None while that is not known yet."""
        if self._outcome is None and self._steps.started:
            return IncidentStatus.EXECUTING
        return self._outcome

    @decide.validator
    def validate_decide(self, decision: Decision) -> None:
        info = workflow.info()
        self._gate.validate(
            decision,
            status=self._status,
            policy=self._policy,
            incident_id=info.workflow_id,
            run_id=info.run_id,
            now=workflow.now(),
        )

    @workflow.query(name="status")
    def status(self) -> IncidentStatus:
        return self._status

    @workflow.query(name="pending_approval")
    def pending_approval(self) -> ApprovalRequest | None:
        request = self._gate.request
        if self._status is not IncidentStatus.AWAITING_APPROVAL or request is None:
            return None
        return request.model_copy(update={"approved_by": list(self._gate.approved_by)})

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
        return list(self._steps.actions)

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
        request = self._gate.request
        if request is None:  # only incidents that asked a person have a message
            return
        await self._notify(
            NOTIFY_PROGRESS,
            NotifyProgressInput(
                incident_id=request.incident_id,
                plan_hash=request.plan_hash,
                key=key,
                text=text,
                outcome=outcome,
                approved_by=list(self._gate.approved_by),
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
        if self._arrivals.pending() and workflow.patched(LATE_PATCH):
            await self._review_arrivals(incident, report)
        self._outcome = self._outcome or status
        self._set_status(status)
        self._note("aiops", f"incident closed: {status.value}")
        closed = IncidentReport(
            incident_id=incident.id,
            status=status,
            rca=report,
            plan=plan,
            policy=decision,
            decisions=list(self._gate.decisions),
            steps=list(self._steps.results),
            verified=verified,
            audit=list(self._audit),
            opened_at=incident.opened_at,
            closed_at=workflow.now(),
        )
        rejected_by = self._gate.rejected_by
        await self._progress(
            "closed",
            f"incident closed: {status.value}",
            outcome="expired" if self._expired else status.value,
            detail=f"by {rejected_by}" if rejected_by else "",
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return closed
