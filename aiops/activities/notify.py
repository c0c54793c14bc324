"""Temporal activities that tell people in Slack: the approval message and its thread.

Pure contracts at the top (workflows import them inside `imports_passed_through`); the notifier
and the link to an incident in the Temporal UI are injected by the composition root (the worker),
so this module imports neither Slack nor anything that talks to the network. Both activities
are idempotent, keyed by incident (id and run) + plan hash: a retry updates the message already
posted, and a progress line is posted once per key, while the next incident of the namespace
(same id, new run) gets a message of its own. Without Slack configured they do nothing and say so.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from aiops.activities.contracts import current_action_key
from aiops.charts import Line, line_chart
from aiops.domain import Anomaly, ApprovalRequest, Incident, IncidentStatus, RcaReport
from aiops.logs import get_logger

log = get_logger(__name__)

NOTIFY_APPROVAL_REQUEST = "notify_approval_request"
NOTIFY_PROGRESS = "notify_progress"

# Slack errors that no retry can fix; everything else (rate limits, timeouts) is retried.
_PERMANENT = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "missing_scope",
    "invalid_blocks",
    "msg_too_long",
}


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NotifyApprovalInput(_Message):
    request: ApprovalRequest
    report: RcaReport | None = None
    incident: Incident | None = Field(
        default=None,
        description="with it, a plot of the top "
        "anomaly's series goes into the thread (if Prometheus is "
        "configured for the activity)",
    )


class NotifyProgressInput(_Message):
    incident_id: str
    plan_hash: str
    key: str = Field(
        description="unique within the incident (e.g. 'step-1', 'closed'); a key "
        "already posted is not posted again"
    )
    text: str = Field(default="", description="thread reply; empty: none")
    outcome: str | None = Field(
        default=None,
        description="when the request is no longer open: "
        "an IncidentStatus value or 'expired'; the approval message then "
        "shows it and loses its buttons",
    )
    approved_by: list[str] = Field(default_factory=list)
    detail: str = Field(default="", description="with `outcome`: who or why, e.g. 'by bob'")


class NotifyResult(_Message):
    delivered: bool
    channel: str | None = None
    ts: str | None = None
    detail: str = ""


class MessageRefLike(Protocol):
    channel: str
    ts: str
    posted: bool


class Notifier(Protocol):
    async def request_approval(
        self,
        request: ApprovalRequest,
        report: RcaReport | None,
        ui_link: str | None = None,
        thread: str | None = None,
    ) -> Any: ...

    async def progress(self, incident_id: str, plan_hash: str, key: str, text: str) -> bool: ...

    async def close(
        self,
        incident_id: str,
        plan_hash: str,
        status: IncidentStatus | str,
        approved_by: list[str],
        detail: str = "",
    ) -> bool: ...

    async def upload(
        self, incident_id: str, plan_hash: str, key: str, content: bytes, filename: str, title: str
    ) -> bool: ...


class SeriesLike(Protocol):
    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def timestamps(self) -> Sequence[float]: ...

    @property
    def values(self) -> Sequence[float]: ...


class RangeReader(Protocol):
    """What the plot needs from Prometheus (aiops.integrations.prometheus.Prometheus fits)."""

    def query_range(
        self, promql: str, start: datetime, end: datetime, step_s: float
    ) -> Sequence[SeriesLike]: ...


class NotifyActivities:
    def __init__(
        self,
        notifier: Notifier | None,
        *,
        ui_link: Callable[[str], str] | None = None,
        metrics: RangeReader | None = None,
        units: Mapping[str, str] | None = None,
    ) -> None:
        """`ui_link` turns a workflow id into its page in the Temporal UI; `units` names each
        signal's unit, for the chart's y axis."""
        self.notifier = notifier
        self.ui_link = ui_link
        self.metrics = metrics
        self.units = dict(units or {})

    @activity.defn(name=NOTIFY_APPROVAL_REQUEST)
    async def notify_approval_request(self, inp: NotifyApprovalInput) -> NotifyResult:
        if self.notifier is None:
            return NotifyResult(delivered=False, detail="Slack is not configured")
        link = self.ui_link(_workflow_id(inp)) if self.ui_link is not None else None
        try:
            ref = await self.notifier.request_approval(
                inp.request, inp.report, link, thread=current_action_key(inp.request.incident_id)
            )
        except Exception as exc:
            raise _not_posted(inp.request, exc) from exc
        detail = "posted" if ref.posted else "updated"
        if inp.incident is not None and self.metrics is not None:
            detail += await self._plot(inp.request, inp.incident)
        return NotifyResult(delivered=True, channel=ref.channel, ts=ref.ts, detail=detail)

    async def _plot(self, request: ApprovalRequest, incident: Incident) -> str:
        """The plot is a courtesy: when it cannot be drawn the approval message still stands."""
        if not incident.anomalies or self.metrics is None or self.notifier is None:
            return ""
        top = max(incident.anomalies, key=lambda a: a.score)
        start, end = _window(top)
        step = max(math.ceil((end - start).total_seconds() / 300), 1)
        try:
            series = await asyncio.to_thread(
                self.metrics.query_range, top.query, start, end, float(step)
            )
            png = await asyncio.to_thread(
                line_chart,
                [Line(s.labels, s.timestamps, s.values) for s in series],
                title=f"{top.signal} of {top.entity}",
                unit=self.units.get(top.signal, ""),
                shade=(top.start.timestamp(), end.timestamp()),
                mark_at=top.start.timestamp(),
                x_range=(start.timestamp(), end.timestamp()),
            )
            title = f"{top.signal} for {top.entity} (dashed line: anomaly start)"
            thread = current_action_key(request.incident_id)
            posted = await self.notifier.upload(
                thread, request.plan_hash, "plot", png, f"{top.signal}.png", title
            )
        except Exception as exc:
            log.warning("slack plot skipped", incident_id=request.incident_id, error=str(exc))
            return "; plot skipped: " + (str(exc) or type(exc).__name__)
        return "; plot attached" if posted else ""

    @activity.defn(name=NOTIFY_PROGRESS)
    async def notify_progress(self, inp: NotifyProgressInput) -> NotifyResult:
        if self.notifier is None:
            return NotifyResult(delivered=False, detail="Slack is not configured")
        thread = current_action_key(inp.incident_id)
        try:
            posted = False
            if inp.text:
                posted = await self.notifier.progress(thread, inp.plan_hash, inp.key, inp.text)
            closed = False
            if inp.outcome is not None:
                closed = await self.notifier.close(
                    thread, inp.plan_hash, inp.outcome, inp.approved_by, inp.detail
                )
        except Exception as exc:
            raise _classify(exc) from exc
        done = [w for w, did in (("posted", posted), ("message updated", closed)) if did]
        return NotifyResult(delivered=bool(done), detail=", ".join(done) or "already done")

    def all(self) -> list[Any]:
        return [self.notify_approval_request, self.notify_progress]


def _window(anomaly: Anomaly) -> tuple[datetime, datetime]:
    if anomaly.evidence_window is not None:
        return anomaly.evidence_window
    end = min(anomaly.start + timedelta(minutes=15), datetime.now(UTC))
    return anomaly.start - timedelta(minutes=30), max(end, anomaly.start + timedelta(minutes=1))


def _workflow_id(inp: NotifyApprovalInput) -> str:
    try:
        return activity.info().workflow_id or inp.request.incident_id
    except RuntimeError:  # called outside an activity (tests, scripts)
        return inp.request.incident_id


def _classify(exc: Exception) -> Exception:
    error = _slack_error(exc)
    if error in _PERMANENT:
        return ApplicationError(
            f"Slack refused: {error}; run `aiops slack check` to see what to fix",
            type="SlackConfigError",
            non_retryable=True,
        )
    return exc


def _not_posted(request: ApprovalRequest, exc: Exception) -> Exception:
    """Slack did not take the approval request. The request still stands: the error (which
    the workflow writes into the audit trail, and the log line here) says so, and how to decide
    through the other channels before it expires."""
    error = _slack_error(exc)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if error in _PERMANENT:
        why = f"Slack refused it ({error}; run `aiops slack check`)"
    elif status == 429 or error == "ratelimited":
        why = "Slack is rate-limiting aiops (HTTP 429)"
    elif isinstance(status, int) and status >= 500:
        why = f"Slack is failing (HTTP {status})"
    else:
        why = f"Slack is unreachable ({type(exc).__name__})"
    hint = (
        f"{why}: the approval request for plan {request.plan_hash} was not posted there; it "
        f"still waits for {', '.join(request.decision.approvers) or 'an approver'} through the "
        f"other channels until {request.expires_at.isoformat()}: "
        f"`aiops approve {request.incident_id} --plan-hash {request.plan_hash}` or the MCP tool "
        "approve_remediation"
    )
    log.warning(
        "approval request not posted to Slack; waiting on the other channels",
        incident_id=request.incident_id,
        plan_hash=request.plan_hash,
        reason=why,
    )
    return ApplicationError(hint, type="SlackUnavailable", non_retryable=error in _PERMANENT)


def _slack_error(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    try:
        return response.get("error") if response is not None else None
    except AttributeError:
        return None
