"""What happens when someone clicks Approve or Reject, whichever transport brought the click.

Slack authenticated the user (signed request or Socket Mode); this app vouches for that user id
by signing the decision with its front-door key and sends it through the incident client. The
workflow's `decide` validator alone decides whether it counts (mapping to a person, approver,
plan hash, expiry); its refusal becomes an ephemeral message and changes nothing, and the
message everybody sees shows only what the workflow answered.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from aiops.approvals.slack.blocks import (
    APPROVE,
    REJECT,
    Block,
    ButtonValue,
    ButtonValueError,
    approvals_status,
    outcome_text,
    with_status,
)
from aiops.domain import ApprovalRequest, IncidentStatus
from aiops.incidents import DecisionSigner, IncidentClient, IncidentError
from aiops.logs import get_logger

log = get_logger(__name__)

_SEEN_MAX = 10_000
_SEEN_TTL_S = 3600.0


@dataclass(frozen=True)
class Click:
    """One button press, as Slack describes it in a `block_actions` payload."""

    user_id: str
    action_id: str
    value: str
    action_ts: str
    channel_id: str | None
    message_ts: str | None
    blocks: list[Block] = field(default_factory=list)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Click | None:
        """The aiops click in the payload, or None if the payload is not one of ours."""
        if payload.get("type") != "block_actions":
            return None
        actions = payload.get("actions") or []
        ours = [a for a in actions if a.get("action_id") in (APPROVE, REJECT)]
        user = (payload.get("user") or {}).get("id")
        if not ours or not isinstance(user, str):
            return None
        action = ours[0]
        container = payload.get("container") or {}
        message = payload.get("message") or {}
        channel = (payload.get("channel") or {}).get("id") or container.get("channel_id")
        return cls(
            user_id=user,
            action_id=str(action["action_id"]),
            value=str(action.get("value", "")),
            action_ts=str(action.get("action_ts", "")),
            channel_id=channel,
            message_ts=message.get("ts") or container.get("message_ts"),
            blocks=list(message.get("blocks") or []),
        )


@dataclass(frozen=True)
class Outcome:
    """What became of a click: `decided` is True only when the workflow accepted a decision."""

    decided: bool
    message: str
    duplicate: bool = False


class ApprovalHandler:
    def __init__(
        self, incidents: IncidentClient, signer: DecisionSigner, web: AsyncWebClient
    ) -> None:
        self.incidents = incidents
        self.signer = signer  # the app's front-door key, trusted by the policy for Slack
        self.web = web
        # Slack re-delivers a click when the ack is late, and people double-click: the same
        # (user, action_ts) is handled once.
        self._seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def _first_time(self, click: Click) -> bool:
        now = time.monotonic()
        while self._seen and (
            len(self._seen) > _SEEN_MAX or next(iter(self._seen.values())) < now - _SEEN_TTL_S
        ):
            self._seen.popitem(last=False)
        key = (click.user_id, click.action_id, click.action_ts)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True

    async def handle(self, payload: dict[str, Any]) -> Outcome | None:
        click = Click.from_payload(payload)
        if click is None:
            return None
        if not self._first_time(click):
            log.info(
                "slack click re-delivered; ignored", user=click.user_id, action_ts=click.action_ts
            )
            return Outcome(False, "already handled", duplicate=True)
        outcome = await self._decide(click)
        log.info(
            "slack click",
            user=click.user_id,
            action=click.action_id,
            decided=outcome.decided,
            result=outcome.message,
        )
        return outcome

    async def _decide(self, click: Click) -> Outcome:
        try:
            button = ButtonValue.decode(click.value)
        except ButtonValueError as exc:
            return await self._refuse(click, f"This button is not a valid aiops approval ({exc}).")
        approve = click.action_id == APPROVE
        try:
            outcome = await self.incidents.decide(
                button.incident_id,
                self.signer,
                approve=approve,
                principal=click.user_id,
                plan_hash=button.plan_hash,
                reason="" if approve else "rejected in Slack",
            )
        except IncidentError as exc:
            # Refusals never touch the shared message: only a decision the workflow accepted
            # (or the workflow's own notify activity) changes what everybody sees.
            return await self._refuse(click, f"{exc}")
        result = outcome.result
        if result.status is IncidentStatus.AWAITING_APPROVAL:
            after = await self._pending_after(button.incident_id)
            required = after.decision.approvals_required if after else len(result.approved_by) + 1
            approvers = after.decision.approvers if after else []
            status, buttons = approvals_status(result.approved_by, required, approvers), True
        elif result.status is IncidentStatus.REJECTED:
            status, buttons = outcome_text("rejected", [], f"by {result.rejected_by}"), False
        elif result.status is IncidentStatus.EXECUTING:
            status = outcome_text("approved", result.approved_by, "running the plan")
            buttons = False
        else:
            status, buttons = outcome_text(result.status, result.approved_by), False
        await self._set_status(click, status, buttons=buttons)
        who = f"{result.decided_by} (<@{click.user_id}>)"
        await self._thread(click, f"{who}: {outcome.message}")
        return Outcome(True, outcome.message)

    async def _pending_after(self, incident_id: str) -> ApprovalRequest | None:
        try:
            return (await self.incidents.show(incident_id)).pending
        except IncidentError:
            return None

    async def _refuse(self, click: Click, text: str) -> Outcome:
        if click.channel_id:
            try:
                await self.web.chat_postEphemeral(
                    channel=click.channel_id, user=click.user_id, text=text
                )
            except SlackApiError as exc:
                log.warning("slack ephemeral failed", error=str(exc.response.get("error")))
        return Outcome(False, text)

    async def _set_status(self, click: Click, text: str, *, buttons: bool) -> None:
        if not (click.channel_id and click.message_ts and click.blocks):
            return
        try:
            await self.web.chat_update(
                channel=click.channel_id,
                ts=click.message_ts,
                blocks=with_status(click.blocks, text, buttons=buttons),
                text=text,
            )
        except SlackApiError as exc:
            log.warning("slack update failed", error=str(exc.response.get("error")))

    async def _thread(self, click: Click, text: str) -> None:
        if not (click.channel_id and click.message_ts):
            return
        try:
            await self.web.chat_postMessage(
                channel=click.channel_id, thread_ts=click.message_ts, text=text
            )
        except SlackApiError as exc:
            log.warning("slack thread reply failed", error=str(exc.response.get("error")))
