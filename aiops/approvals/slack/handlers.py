"""What happens when someone clicks Approve or Reject, whichever transport brought the click.

Pre-checks here only turn the common refusals into a clear ephemeral message before anything is
sent; the workflow's `decide` validator stays the authority (identity, plan hash, expiry). A click
that is refused changes nothing: no update is sent and the message keeps its buttons.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from aiops.approvals.incidents import IncidentError, decide, show_incident
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
from aiops.logs import get_logger
from aiops.policy import resolve_identity
from aiops.policy.models import Policy

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
        self,
        temporal: Client,
        policy: Policy,
        web: AsyncWebClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.temporal = temporal
        self.policy = policy
        self.web = web
        self.clock = clock
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
        identity = resolve_identity(self.policy, "slack", click.user_id)
        if identity is None:
            return await self._refuse(
                click,
                (
                    f"Your Slack user <@{click.user_id}> ({click.user_id}) is not mapped to any "
                    "identity in the aiops policy, so it cannot decide. "
                    "Ask an admin to add it under "
                    "`approvals.identities.<name>.slack`."
                ),
            )
        # Refusals never touch the shared message: only a decision the workflow accepted (or
        # the workflow's own notify activity) changes what everybody sees.
        if self.clock() >= button.expires_at:
            return await self._refuse(
                click,
                (
                    f"The approval request for {button.incident_id} expired at "
                    f"{button.expires_at.isoformat()}; nothing was decided."
                ),
            )
        try:
            view = await show_incident(self.temporal, button.incident_id)
        except IncidentError as exc:
            return await self._refuse(click, str(exc))
        pending = view.pending
        if pending is None:
            state = view.status.value if view.status else view.execution.lower()
            return await self._refuse(
                click,
                (
                    f"Incident {button.incident_id} is {state.replace('_', ' ')}; there is no plan "
                    "awaiting a decision."
                ),
            )
        if pending.plan_hash != button.plan_hash:
            return await self._refuse(
                click,
                (
                    f"This button is for plan {button.plan_hash}, but the plan awaiting a decision "
                    f"is {pending.plan_hash}; decide on the newest message."
                ),
            )
        approvers = pending.decision.approvers
        if identity not in approvers:
            return await self._refuse(
                click,
                (
                    f"{identity} may not decide on {button.incident_id}; the policy allows: "
                    f"{', '.join(approvers) or 'nobody'}."
                ),
            )
        if approve and identity in pending.approved_by:
            return await self._refuse(
                click,
                (
                    f"You ({identity}) have already approved; "
                    + approvals_status(
                        pending.approved_by, pending.decision.approvals_required, approvers
                    ).split(" ", 1)[1]
                ),
            )
        try:
            said = await decide(
                self.temporal,
                button.incident_id,
                approve=approve,
                identity=identity,
                channel="slack",
                plan_hash=button.plan_hash,
                reason="" if approve else f"rejected in Slack by {identity}",
            )
        except IncidentError as exc:
            return await self._refuse(click, str(exc))
        approved_by = [*pending.approved_by, identity] if approve else list(pending.approved_by)
        if not approve:
            status = outcome_text("rejected", [], f"by {identity}")
            buttons = False
        else:
            after = await self._pending_after(button.incident_id)
            if after is not None and after.plan_hash == button.plan_hash:
                status = approvals_status(
                    after.approved_by, after.decision.approvals_required, after.decision.approvers
                )
                buttons = True
            else:
                status = outcome_text("approved", approved_by, "running the plan")
                buttons = False
        await self._set_status(click, status, buttons=buttons)
        await self._thread(click, f"{identity} ({'<@' + click.user_id + '>'}): {said}")
        return Outcome(True, said)

    async def _pending_after(self, incident_id: str) -> Any:
        try:
            return (await show_incident(self.temporal, incident_id)).pending
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
