"""Temporal activities that tell people in Slack: the approval message and its thread.

Pure contracts at the top (workflows import them inside `imports_passed_through`); the Slack
client is injected, so this module imports nothing that talks to the network. Both activities
are idempotent, keyed by incident id + plan hash: a retry updates the message already posted,
and a progress line is posted once per key. Without Slack configured they do nothing and say so.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from aiops.domain import ApprovalRequest, IncidentStatus, RcaReport

NOTIFY_APPROVAL_REQUEST = "notify_approval_request"
NOTIFY_PROGRESS = "notify_progress"

# Slack errors that no retry can fix; everything else (rate limits, timeouts) is retried.
_PERMANENT = {"invalid_auth", "not_authed", "account_inactive", "token_revoked",
              "channel_not_found", "not_in_channel", "is_archived", "missing_scope",
              "invalid_blocks", "msg_too_long"}


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NotifyApprovalInput(_Message):
    request: ApprovalRequest
    report: RcaReport | None = None


class NotifyProgressInput(_Message):
    incident_id: str
    plan_hash: str
    key: str = Field(description="unique within the incident (e.g. 'step-1', 'closed'); a key "
                     "already posted is not posted again")
    text: str = Field(default="", description="thread reply; empty: none")
    outcome: str | None = Field(default=None, description="when the request is no longer open: "
                                "an IncidentStatus value or 'expired'; the approval message then "
                                "shows it and loses its buttons")
    approved_by: list[str] = Field(default_factory=list)


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
    async def request_approval(self, request: ApprovalRequest, report: RcaReport | None,
                               ui_link: str | None = None) -> Any: ...

    async def progress(self, incident_id: str, plan_hash: str, key: str, text: str) -> bool: ...

    async def close(self, incident_id: str, plan_hash: str, status: IncidentStatus | str,
                    approved_by: list[str], detail: str = "") -> bool: ...


class NotifyActivities:
    def __init__(self, notifier: Notifier | None, *, ui_url: str | None = None,
                 namespace: str = "default") -> None:
        self.notifier = notifier
        self.ui_url = ui_url
        self.namespace = namespace

    @activity.defn(name=NOTIFY_APPROVAL_REQUEST)
    async def notify_approval_request(self, inp: NotifyApprovalInput) -> NotifyResult:
        if self.notifier is None:
            return NotifyResult(delivered=False, detail="Slack is not configured")
        link = None
        if self.ui_url:
            from aiops.approvals.slack.blocks import temporal_ui_link

            link = temporal_ui_link(self.ui_url, self.namespace, _workflow_id(inp))
        try:
            ref = await self.notifier.request_approval(inp.request, inp.report, link)
        except Exception as exc:
            raise _classify(exc) from exc
        return NotifyResult(delivered=True, channel=ref.channel, ts=ref.ts,
                            detail="posted" if ref.posted else "updated")

    @activity.defn(name=NOTIFY_PROGRESS)
    async def notify_progress(self, inp: NotifyProgressInput) -> NotifyResult:
        if self.notifier is None:
            return NotifyResult(delivered=False, detail="Slack is not configured")
        try:
            posted = False
            if inp.text:
                posted = await self.notifier.progress(inp.incident_id, inp.plan_hash, inp.key,
                                                      inp.text)
            closed = False
            if inp.outcome is not None:
                closed = await self.notifier.close(inp.incident_id, inp.plan_hash, inp.outcome,
                                                   inp.approved_by)
        except Exception as exc:
            raise _classify(exc) from exc
        done = [w for w, did in (("posted", posted), ("message updated", closed)) if did]
        return NotifyResult(delivered=bool(done), detail=", ".join(done) or "already done")

    def all(self) -> list[Any]:
        return [self.notify_approval_request, self.notify_progress]


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
            type="SlackConfigError", non_retryable=True,
        )
    return exc
