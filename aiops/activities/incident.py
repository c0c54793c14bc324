"""Incident activities: thin adapters from workflow inputs to the modules that do the work.

Kubernetes and Prometheus calls are blocking, so those activities are plain functions that the
worker runs on its thread pool; they heartbeat while they wait.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

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
    VerifyInput,
    VerifyResult,
    current_action_key,
)
from aiops.agent.graph import AgentDeps, ainvestigate
from aiops.domain import (
    Evidence,
    FaultType,
    Hypothesis,
    Incident,
    RcaReport,
    StepResult,
)
from aiops.integrations.kube_errors import KubeActionError
from aiops.integrations.kube_facts import ClusterFacts
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.prometheus import Prometheus, PrometheusError
from aiops.integrations.redact import Redactor
from aiops.logs import get_logger
from aiops.playbooks.planner import Observed, plan_remediation
from aiops.policy.evaluate import ActionRecord
from aiops.profiles import Assembly

log = get_logger(__name__)

HISTORY_WINDOW = timedelta(hours=24)


class Investigator(Protocol):
    async def investigate(self, incident: Incident) -> RcaReport: ...


class HistorySource(Protocol):
    async def recent_actions(self, since: datetime) -> list[ActionRecord]: ...


class AnomalyRanker:
    """The fallback investigator: ranks the incident's own anomalies by score. The LangGraph
    agent replaces it where Prometheus and Kubernetes are configured."""

    async def investigate(self, incident: Incident) -> RcaReport:
        started = datetime.now(UTC)
        by_entity: dict[str, list[Evidence]] = defaultdict(list)
        scores: dict[str, float] = defaultdict(float)
        for anomaly in incident.anomalies:
            by_entity[anomaly.entity].append(
                Evidence(
                    kind="alert" if anomaly.source == "alertmanager" else "metric",
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
                namespace=incident.namespace,
                fault=FaultType.UNKNOWN,
                confidence=round(scores[entity] / total, 4),
                evidence=by_entity[entity],
            )
            for entity in ranked
        ]
        summary = f"{ranked[0]} shows the strongest anomaly" if ranked else "no anomalies"
        return RcaReport(
            incident_id=incident.id,
            hypotheses=hypotheses,
            summary=summary,
            started_at=started,
            finished_at=datetime.now(UTC),
        )


class AgentInvestigator:
    """The LangGraph investigation agent (deterministic unless an LLM is configured).

    Investigations are mostly CPU (ranking a metrics matrix) and share the worker process with
    the workflow tasks: at most `parallel` run at once (default: one per core), so a storm of
    incidents queues here instead of starving the event loop until workflow tasks time out."""

    def __init__(
        self, deps: AgentDeps, parallel: int | None = None, redactor: Redactor | None = None
    ) -> None:
        self.deps = deps
        self._slots = asyncio.Semaphore(parallel or os.cpu_count() or 1)
        self._redactor = redactor or Redactor()

    async def investigate(self, incident: Incident) -> RcaReport:
        async with self._slots:
            report = await ainvestigate(incident, self.deps)
        # Evidence quotes log lines and events: the report goes into Temporal history, Slack
        # and MCP answers, so it leaves here without the secrets those lines may hold.
        redacted: RcaReport = self._redactor.model(report)
        return redacted


class NoHistory:
    async def recent_actions(self, since: datetime) -> list[ActionRecord]:
        return []


class IncidentActivities:
    """Activities bound to their dependencies; the worker registers `all()`."""

    def __init__(
        self,
        *,
        investigator: Investigator | None = None,
        executor: KubernetesExecutor | None = None,
        prometheus: Prometheus | None = None,
        history: HistorySource | None = None,
        verify_poll_s: float = 5.0,
        signals: Callable[[], Assembly] | None = None,
    ) -> None:
        """`signals`: the signals the cluster's metric profiles feed now (discovery), which the
        plan's verification and preconditions are written in; default: every shipped part."""
        self.investigator = investigator or AnomalyRanker()
        self.executor = executor
        self.facts = ClusterFacts(executor.api_client) if executor is not None else None
        self.prometheus = prometheus
        self.history = history or NoHistory()
        self.verify_poll_s = verify_poll_s
        self.signals = signals

    @activity.defn(name=INVESTIGATE_INCIDENT)
    async def investigate_incident(self, inp: InvestigateInput) -> RcaReport:
        report = await self.investigator.investigate(inp.incident)
        log.info(
            "investigated",
            incident_id=inp.incident.id,
            top=[h.target for h in report.hypotheses[:3]],
        )
        return report

    @activity.defn(name=OBSERVE_TARGET)
    async def observe_target(self, inp: ObserveInput) -> Observation:
        history = await self.history.recent_actions(datetime.now(UTC) - HISTORY_WINDOW)
        top = inp.report.top
        if top is None:
            return Observation(history=history)
        if self.facts is None:
            return Observation(
                history=history, notes=["Kubernetes is not configured: no cluster facts"]
            )
        namespace = top.namespace or inp.namespace or "default"
        if top.target_kind == "Node":
            facts = self.facts.node(top.target)
            target = f"Node/{top.target}"
        else:
            facts = self.facts.deployment(namespace, top.target)
            target = f"Deployment/{namespace}/{top.target}"
        return Observation(
            observed=Observed(replicas=facts.replicas, pod=facts.pod, node=facts.node),
            target=target,
            labels=facts.labels,
            pdbs=facts.pdbs,
            history=history,
        )

    @activity.defn(name=PLAN_REMEDIATION)
    async def plan_remediation(self, inp: PlanInput) -> PlanResult:
        live = await asyncio.to_thread(self.signals) if self.signals is not None else None
        planned = plan_remediation(inp.report, inp.playbooks, inp.observed, live)
        return PlanResult(
            plan=planned.plan, preconditions=planned.preconditions, skipped=planned.skipped
        )

    @activity.defn(name=CHECK_PRECONDITIONS)
    def check_preconditions(self, inp: PreconditionsInput) -> PreconditionsResult:
        findings: list[str] = []
        passed = True
        for check in inp.checks:
            ok, found = self._run_check(check.promql, check.expect, check.k8s, check.args)
            findings.append(f"{'ok' if ok else 'FAILED'}: {check.description or 'check'} ({found})")
            passed = passed and ok
        return PreconditionsResult(passed=passed, findings=findings)

    def _run_check(
        self, promql: str | None, expect: str, k8s_check: Any, args: dict[str, Any]
    ) -> tuple[bool, str]:
        if promql is not None:
            if self.prometheus is None:
                return False, "Prometheus is not configured"
            try:
                series = self.prometheus.query(promql)
            except PrometheusError as exc:
                return False, str(exc)
            non_empty = bool(series)
            ok = non_empty if expect == "non_empty" else not non_empty
            return ok, f"{len(series)} series for {promql}"
        if self.facts is None:
            return False, "Kubernetes is not configured"
        try:
            return self.facts.check(k8s_check, args)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"

    @activity.defn(name=DRY_RUN_PLAN)
    def dry_run_plan(self, inp: DryRunInput) -> DryRunResult:
        executor = self._executor()
        try:
            diffs = executor.preview(
                list(inp.plan.steps), incident_id=current_action_key(inp.incident_id)
            )
        except KubeActionError as exc:
            raise _as_application_error(exc) from exc
        return DryRunResult(diffs=diffs)

    @activity.defn(name=EXECUTE_STEP)
    def execute_step(self, inp: ExecuteStepInput) -> StepResult:
        executor = self._executor(on_wait=activity.heartbeat)
        try:
            result = executor.execute(
                inp.step, incident_id=current_action_key(inp.incident_id), dry_run=inp.dry_run
            )
        except KubeActionError as exc:
            raise _as_application_error(exc) from exc
        log.info(
            "step executed",
            incident_id=inp.incident_id,
            action=inp.step.action,
            target=inp.step.target,
            changed=result.changed,
            attempt=activity.info().attempt,
        )
        return result

    @activity.defn(name=VERIFY_REMEDIATION)
    def verify_remediation(self, inp: VerifyInput) -> VerifyResult:
        """The post-condition must hold continuously for `hold_for_s` within `timeout_s`."""
        if self.prometheus is None:
            return VerifyResult(verified=False, detail="Prometheus is not configured")
        spec = inp.verification
        deadline = time.monotonic() + spec.timeout_s
        held_since: float | None = None
        last = "not evaluated"
        while time.monotonic() < deadline:
            try:
                holds = bool(self.prometheus.query(spec.query))
                last = "holds" if holds else "does not hold"
            except PrometheusError as exc:
                holds, last = False, str(exc)
            now = time.monotonic()
            held_since = (held_since or now) if holds else None
            activity.heartbeat(last)
            if held_since is not None and now - held_since >= spec.hold_for_s:
                return VerifyResult(
                    verified=True, detail=f"held for {spec.hold_for_s:.0f}s: {spec.query}"
                )
            time.sleep(min(self.verify_poll_s, max(deadline - now, 0.0)))
        return VerifyResult(
            verified=False,
            detail=f"not verified within {spec.timeout_s:.0f}s (last: {last}): {spec.query}",
        )

    def _executor(self, on_wait: Callable[[str], None] | None = None) -> KubernetesExecutor:
        if self.executor is None:
            raise ApplicationError(
                "Kubernetes is not configured; set AIOPS_KUBERNETES__KUBECONFIG",
                type="KubernetesNotConfigured",
                non_retryable=True,
            )
        return KubernetesExecutor(self.executor.api_client, on_wait=on_wait)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.investigate_incident,
            self.observe_target,
            self.plan_remediation,
            self.check_preconditions,
            self.dry_run_plan,
            self.execute_step,
            self.verify_remediation,
        ]


def _as_application_error(exc: KubeActionError) -> ApplicationError:
    return ApplicationError(
        str(exc), type=type(exc).__name__, non_retryable=not getattr(exc, "retryable", False)
    )
