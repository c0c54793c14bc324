"""Temporal activities that tell people in Slack: the approval message and its thread.

Pure contracts at the top (workflows import them inside `imports_passed_through`); the Slack
client is injected, so this module imports nothing that talks to the network. Both activities
are idempotent, keyed by incident (id and run) + plan hash: a retry updates the message already
posted, and a progress line is posted once per key, while the next incident of the namespace
(same id, new run) gets a message of its own. Without Slack configured they do nothing and say so.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from aiops.activities.contracts import current_action_key
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
        ui_url: str | None = None,
        namespace: str = "default",
        metrics: RangeReader | None = None,
    ) -> None:
        self.notifier = notifier
        self.ui_url = ui_url
        self.namespace = namespace
        self.metrics = metrics

    @activity.defn(name=NOTIFY_APPROVAL_REQUEST)
    async def notify_approval_request(self, inp: NotifyApprovalInput) -> NotifyResult:
        if self.notifier is None:
            return NotifyResult(delivered=False, detail="Slack is not configured")
        link = None
        if self.ui_url:
            from aiops.approvals.slack.blocks import temporal_ui_link

            link = temporal_ui_link(self.ui_url, self.namespace, _workflow_id(inp))
        try:
            ref = await self.notifier.request_approval(
                inp.request, inp.report, link, thread=current_action_key(inp.request.incident_id)
            )
        except Exception as exc:
            raise _classify(exc) from exc
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
            from aiops.approvals.slack.plot import render_png

            series = await asyncio.to_thread(
                self.metrics.query_range, top.query, start, end, float(step)
            )
            png = render_png(
                [(s.timestamps, s.values) for s in series[:5]], mark_at=top.start.timestamp()
            )
            title = f"{top.signal} for {top.entity} (red line: anomaly start)"
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
    response = getattr(exc, "response", None)
    error = response.get("error") if response is not None else None
    if error in _PERMANENT:
        return ApplicationError(
            f"Slack refused: {error}; run `aiops slack check` to see what to fix",
            type="SlackConfigError",
            non_retryable=True,
        )
    return exc
