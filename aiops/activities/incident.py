"""Incident activities: thin adapters from workflow inputs to the modules that do the work.

This is the walking skeleton. Investigation ranks the incident's own anomalies until the RCA agent
lands; planning proposes a single `noop.record` step until the playbooks land; the step executor
only knows `noop.record`, which records the step and changes nothing. Their names and contracts
are final.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

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
    Evidence,
    FaultType,
    Hypothesis,
    RcaReport,
    RemediationPlan,
    Step,
    StepResult,
)
from aiops.logs import get_logger

log = get_logger(__name__)

NOOP_ACTION = "noop.record"


class IncidentActivities:
    """Activities bound to their dependencies; the worker registers the bound methods."""

    def __init__(self) -> None:
        self.executed: list[ExecuteStepInput] = []

    @activity.defn(name=INVESTIGATE_INCIDENT)
    async def investigate_incident(self, inp: InvestigateInput) -> RcaReport:
        started = datetime.now(UTC)
        by_entity: dict[str, list[Evidence]] = defaultdict(list)
        scores: dict[str, float] = defaultdict(float)
        for anomaly in inp.incident.anomalies:
            by_entity[anomaly.entity].append(
                Evidence(
                    kind="metric",
                    summary=f"{anomaly.signal} went {anomaly.direction.value} "
                    f"(score {anomaly.score:.2f})",
                    source=anomaly.query,
                    observed_at=anomaly.start,
                    value=anomaly.value,
                    baseline=anomaly.baseline,
                )
            )
            scores[anomaly.entity] = max(scores[anomaly.entity], anomaly.score)
        total = sum(scores.values()) or 1.0
        ranked = sorted(scores, key=lambda e: (-scores[e], e))
        hypotheses = [
            Hypothesis(
                target=entity,
                namespace=inp.incident.namespace,
                fault=FaultType.UNKNOWN,
                confidence=round(scores[entity] / total, 4),
                evidence=by_entity[entity],
            )
            for entity in ranked
        ]
        summary = (
            f"{ranked[0]} shows the strongest anomaly" if ranked else "no anomalies to rank"
        )
        log.info("investigated", incident_id=inp.incident.id, top=ranked[:3])
        return RcaReport(
            incident_id=inp.incident.id, hypotheses=hypotheses, summary=summary,
            started_at=started, finished_at=datetime.now(UTC),
        )

    @activity.defn(name=PLAN_REMEDIATION)
    async def plan_remediation(self, inp: PlanInput) -> RemediationPlan:
        top = inp.report.top
        if top is None:
            return RemediationPlan(
                incident_id=inp.incident.id, playbook_id="escalate",
                rationale="no hypothesis to act on",
            )
        step = Step(
            action=NOOP_ACTION,
            args={"namespace": top.namespace or "", "name": top.target},
            description=f"record that {top.target} would be remediated",
        )
        return RemediationPlan(
            incident_id=inp.incident.id, playbook_id="record-only", namespace=top.namespace,
            target=top.target, steps=[step], rationale=inp.report.summary,
        )

    @activity.defn(name=DRY_RUN_PLAN)
    async def dry_run_plan(self, inp: DryRunInput) -> DryRunResult:
        return DryRunResult(
            diffs=[f"{step.action} {step.target}: no change (record only)"
                   for step in inp.plan.steps]
        )

    @activity.defn(name=EXECUTE_STEP)
    async def execute_step(self, inp: ExecuteStepInput) -> StepResult:
        if inp.step.action != NOOP_ACTION:
            raise ApplicationError(
                f"action {inp.step.action} has no executor", type="InvalidStep",
                non_retryable=True,
            )
        self.executed.append(inp)
        log.info("step executed", incident_id=inp.incident_id, action=inp.step.action,
                 target=inp.step.target, attempt=activity.info().attempt)
        return StepResult(
            action=inp.step.action, target=inp.step.target, ok=True, changed=False,
            message="recorded", dry_run=inp.dry_run,
        )

    def all(self) -> list[object]:
        return [self.investigate_incident, self.plan_remediation, self.dry_run_plan,
                self.execute_step]
