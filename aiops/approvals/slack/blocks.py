"""Block Kit rendering of approval requests (pure: no Slack client, no Temporal).

The message carries everything an approver needs to decide without leaving Slack: the root cause,
the top evidence, the plan and its dry-run diff, the policy decision, the expiry and a link to the
workflow in the Temporal UI. Blocks that change later carry stable block ids so the message can
be updated in place from the blocks Slack sends back with each click.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiops.domain import ApprovalRequest, IncidentStatus, RcaReport

APPROVE = "aiops_approve"
REJECT = "aiops_reject"
STATUS_BLOCK = "aiops_status"
ACTIONS_BLOCK = "aiops_actions"

# Slack's limits: section text 3000 characters, header 150, button value 2000.
_SECTION_MAX = 2900
_HEADER_MAX = 150
_TOP_EVIDENCE = 3

Block = dict[str, Any]


class ButtonValueError(ValueError):
    """A button value that aiops did not write (or that was tampered with)."""


@dataclass(frozen=True)
class ButtonValue:
    """What a button carries: which incident, which plan, and until when it may be decided."""

    incident_id: str
    plan_hash: str
    expires_at: datetime

    def encode(self) -> str:
        return json.dumps(
            {"i": self.incident_id, "p": self.plan_hash, "e": int(self.expires_at.timestamp())},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str) -> ButtonValue:
        try:
            data = json.loads(raw)
            return cls(
                incident_id=str(data["i"]),
                plan_hash=str(data["p"]),
                expires_at=datetime.fromtimestamp(int(data["e"]), tz=UTC),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ButtonValueError(f"not an aiops approval button value: {raw[:80]!r}") from exc


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as markup; user-controlled text must not inject links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def temporal_ui_link(ui_url: str, namespace: str, workflow_id: str) -> str:
    return (
        f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/"
        f"{quote(workflow_id, safe='')}"
    )


def slack_date(at: datetime) -> str:
    """A date Slack shows in each reader's own time zone, with UTC as the fallback text."""
    epoch = int(at.timestamp())
    fallback = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"


def fallback_text(request: ApprovalRequest) -> str:
    """The notification text (and what screen readers and old clients show)."""
    return (
        f"Approval needed for {request.incident_id}: {request.plan.playbook_id} "
        f"(plan {request.plan_hash})"
    )


def approval_blocks(
    request: ApprovalRequest,
    report: RcaReport | None = None,
    *,
    ui_link: str | None = None,
) -> list[Block]:
    """The approval message while the request is open: everything, plus the two buttons."""
    plan = request.plan
    decision = request.decision
    blocks: list[Block] = [
        {
            "type": "header",
            "text": _plain(
                f":rotating_light: Approval needed: {request.incident_id}"[:_HEADER_MAX]
            ),
        },
        _section("*Root cause*\n" + _root_cause(report)),
    ]
    evidence = _evidence(report)
    if evidence:
        blocks.append(_section("*Top evidence*\n" + evidence))
    steps = (
        "\n".join(
            f"{i}. `{escape(s.action)}` on `{escape(s.target)}`"
            + (f" - {escape(s.description)}" if s.description else "")
            for i, s in enumerate(plan.steps, 1)
        )
        or "_no steps_"
    )
    blocks.append(
        _section(
            f"*Plan* `{escape(plan.playbook_id)}` (risk {plan.risk.value}, "
            f"plan `{request.plan_hash}`)"
            f"\n{steps}" + (f"\n_{escape(plan.rationale)}_" if plan.rationale else "")
        )
    )
    if request.dry_run:
        blocks.append(_section("*Dry run*\n" + _code("\n".join(request.dry_run))))
    who = ", ".join(escape(a) for a in decision.approvers) or "nobody"
    reasons = "\n".join(f"- {escape(r)}" for r in decision.reasons)
    blocks.append(
        _section(
            f"*Policy* needs {max(decision.approvals_required, 1)} approval(s) from {who}; "
            f"on timeout: {decision.on_timeout.value}" + (f"\n{reasons}" if reasons else "")
        )
    )
    context = [f"Expires {slack_date(request.expires_at)}"]
    if ui_link:
        context.append(f"<{ui_link}|Open in Temporal UI>")
    if decision.policy_version:
        context.append(f"policy `{escape(decision.policy_version)}`")
    blocks.append({"type": "context", "elements": [_mrkdwn(" | ".join(context))]})
    blocks.append(
        status_block(
            approvals_status(request.approved_by, decision.approvals_required, decision.approvers)
        )
    )
    value = ButtonValue(request.incident_id, request.plan_hash, request.expires_at).encode()
    blocks.append(
        {
            "type": "actions",
            "block_id": ACTIONS_BLOCK,
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "style": "primary",
                    "value": value,
                    "text": _plain("Approve"),
                },
                {
                    "type": "button",
                    "action_id": REJECT,
                    "style": "danger",
                    "value": value,
                    "text": _plain("Reject"),
                    "confirm": {
                        "title": _plain("Reject this plan?"),
                        "text": _plain(
                            "The plan will not run and the incident closes as rejected."
                        ),
                        "confirm": _plain("Reject"),
                        "deny": _plain("Cancel"),
                    },
                },
            ],
        }
    )
    return blocks


def approvals_status(approved_by: list[str], required: int, approvers: list[str]) -> str:
    """Who has approved so far, and who else could: what the two-person rule needs visible."""
    needed = max(required, 1)
    if not approved_by:
        return f":hourglass_flowing_sand: Waiting for approval (0 of {needed})"
    done = ", ".join(escape(a) for a in approved_by)
    if len(approved_by) >= needed:
        return f":white_check_mark: Approved by {done} ({len(approved_by)} of {needed})"
    others = [a for a in approvers if a not in approved_by]
    rest = f"; waiting for one more of: {', '.join(escape(a) for a in others)}" if others else ""
    return f":hourglass_flowing_sand: Approved by {done} ({len(approved_by)} of {needed}){rest}"


def outcome_text(status: IncidentStatus | str, approved_by: list[str], detail: str = "") -> str:
    """The status line once the request is no longer open."""
    value = status.value if isinstance(status, IncidentStatus) else status
    icon = {
        "rejected": ":no_entry:",
        "expired": ":alarm_clock:",
        "escalated": ":alarm_clock:",
        "resolved": ":white_check_mark:",
        "failed": ":x:",
        "rolled_back": ":rewind:",
    }.get(value, ":gear:")
    who = f" - approved by {', '.join(escape(a) for a in approved_by)}" if approved_by else ""
    extra = f": {escape(detail)}" if detail else ""
    return f"{icon} *{value.replace('_', ' ')}*{who}{extra}"


def status_block(text: str) -> Block:
    block = _section(text)
    block["block_id"] = STATUS_BLOCK
    return block


def with_status(blocks: list[Block], text: str, *, buttons: bool) -> list[Block]:
    """The same message with a new status line; without the buttons once nothing is left to
    decide. Works on the blocks Slack sends back with a click, so no state is needed."""
    updated: list[Block] = []
    for block in blocks:
        if block.get("block_id") == STATUS_BLOCK:
            updated.append(status_block(text))
        elif block.get("block_id") == ACTIONS_BLOCK:
            if buttons:
                updated.append(block)
        else:
            updated.append(block)
    if not any(b.get("block_id") == STATUS_BLOCK for b in updated):
        updated.append(status_block(text))
    return updated


def _root_cause(report: RcaReport | None) -> str:
    if report is None:
        return "_no investigation report attached_"
    text = escape(report.summary)
    top = report.top
    if top is not None:
        where = f"{top.namespace}/{top.target}" if top.namespace else top.target
        text += (
            f"\n{top.target_kind} `{escape(where)}`: {top.fault.value}, "
            f"confidence {top.confidence:.0%}"
        )
    return text


def _evidence(report: RcaReport | None) -> str:
    if report is None or report.top is None:
        return ""
    ranked = sorted(report.top.evidence, key=lambda e: e.weight, reverse=True)[:_TOP_EVIDENCE]
    return "\n".join(f"- {escape(e.summary)} (`{escape(e.source)[:200]}`)" for e in ranked)


def _code(text: str) -> str:
    body = text.replace("```", "'''")
    limit = _SECTION_MAX - 40
    if len(body) > limit:
        body = body[:limit] + "\n... (truncated; full diff in the Temporal UI)"
    return f"```{body}```"


def _section(text: str) -> Block:
    if len(text) > _SECTION_MAX:
        text = text[: _SECTION_MAX - 15] + "\n(truncated)"
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}
