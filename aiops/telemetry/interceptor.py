"""Worker interceptors that turn what the activities and incidents do into metrics and log
context, without the activities or workflows knowing about either.

Activities: every activity is timed by name and outcome; the detection pass, the investigation
and the remediation steps also feed their own series from their results. While an activity of an
incident runs, its log lines carry `incident_id` and `workflow_id` (structlog context variables,
which temporalio copies into the thread of a synchronous activity).

Workflows: the time from an approval request to each accepted `decide` update. Recorded only when
the workflow is not replaying, so a worker that rebuilds an incident from its history does not
count the old decision again; nothing here reaches the workflow's history.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import structlog
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    HandleUpdateInput,
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from aiops.activities.contracts import EXECUTE_STEP, INVESTIGATE_INCIDENT
from aiops.activities.detection import DETECT_ANOMALIES
from aiops.activities.notify import NOTIFY_APPROVAL_REQUEST
from aiops.logs import INCIDENT_PREFIX, get_logger
from aiops.telemetry import metrics

log = get_logger(__name__)

DECIDE_UPDATE = "decide"  # IncidentWorkflow's update (workflows/incident.py)


class TelemetryInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _ApprovalLatency


class _ActivityMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        context = {"workflow_id": info.workflow_id, "activity": info.activity_type}
        if info.workflow_id and info.workflow_id.startswith(INCIDENT_PREFIX):
            context["incident_id"] = info.workflow_id
        tokens = structlog.contextvars.bind_contextvars(**context)
        started = time.monotonic()
        outcome = "failed"
        try:
            result = await self.next.execute_activity(input)
            outcome = "succeeded"
            _record_safely(info.activity_type, input.args, result)
            return result
        finally:
            seconds = time.monotonic() - started
            metrics.ACTIVITY_SECONDS.labels(info.activity_type, outcome).observe(seconds)
            record_timing(info.activity_type, outcome, seconds, input.args)
            structlog.contextvars.reset_contextvars(**tokens)


def _record_safely(name: str, args: Any, result: Any) -> None:
    """Metrics never fail an activity: a result of an unexpected shape is logged and skipped."""
    try:
        record_result(name, args, result)
    except (AttributeError, TypeError, ValueError) as exc:
        log.warning("activity metrics skipped", activity=name, error=str(exc))


def record_timing(name: str, outcome: str, seconds: float, args: Any) -> None:
    if name == INVESTIGATE_INCIDENT:
        metrics.INVESTIGATION_SECONDS.labels(outcome).observe(seconds)
    elif name == DETECT_ANOMALIES and outcome == "failed":
        metrics.DETECTION_PASSES.labels("failed").inc()
    elif name == EXECUTE_STEP and outcome == "failed":
        step = getattr(args[0], "step", None) if args else None
        if step is not None and not getattr(args[0], "dry_run", False):
            metrics.ACTIONS.labels(step.action, "failed").inc()


def record_result(name: str, args: Any, result: Any) -> None:
    """Series read off an activity's result (the activities' own pydantic models)."""
    if name == DETECT_ANOMALIES:
        metrics.DETECTION_PASSES.labels("succeeded").inc()
        metrics.DETECTION_PASS_SECONDS.observe(result.seconds)
        now = time.time()
        metrics.DETECTION_LAST_PASS.set(now)
        metrics.DETECTION_LAG_SECONDS.set(max(0.0, now - result.at.timestamp()))
        metrics.SERIES_WATCHED.set(result.checkpoint.series)
        for anomaly in result.anomalies:
            metrics.ANOMALIES.labels(anomaly.signal).inc()
        for signal in result.signals:
            if signal.status == "failed":
                metrics.DETECTION_SIGNAL_FAILURES.labels(signal.signal).inc()
    elif name == EXECUTE_STEP and not result.dry_run:
        metrics.ACTIONS.labels(result.action, "succeeded" if result.ok else "failed").inc()


class _ApprovalLatency(WorkflowInboundInterceptor):
    """Per workflow run: remembers when approval was requested, times each decision."""

    requested_at: datetime | None = None

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_RequestWatcher(outbound, self))

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        result = await self.next.handle_update_handler(input)
        if (
            input.update == DECIDE_UPDATE
            and self.requested_at is not None
            and getattr(result, "accepted", False)
            and not workflow.unsafe.is_replaying()
        ):
            decision = input.args[0] if input.args else None
            label = "approve" if getattr(decision, "approve", False) else "reject"
            waited = (workflow.now() - self.requested_at).total_seconds()
            metrics.APPROVAL_LATENCY_SECONDS.labels(label).observe(max(0.0, waited))
        return result


class _RequestWatcher(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, owner: _ApprovalLatency) -> None:
        super().__init__(next)
        self._owner = owner

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        if input.activity == NOTIFY_APPROVAL_REQUEST and input.args:
            request = getattr(input.args[0], "request", None)
            self._owner.requested_at = getattr(request, "requested_at", None)
        return self.next.start_activity(input)
