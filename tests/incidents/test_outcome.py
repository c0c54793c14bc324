"""What every front door (CLI, MCP, Slack) says after a decision: what the workflow answered,
never the front door's own guess."""

from __future__ import annotations

import pytest

from aiops.domain import DecideResult, IncidentStatus
from aiops.incidents import DecideOutcome


def said(approve: bool, status: IncidentStatus, needed: int = 0, rejected_by: str = "") -> str:
    result = DecideResult(
        accepted=True,
        status=status,
        approved_by=["alice"] if approve else [],
        approvals_needed=needed,
        decided_by="alice" if approve else "bob",
        rejected_by=rejected_by,
    )
    return DecideOutcome("incident-1", "0123456789abcdef", approve, result).message


@pytest.mark.parametrize(
    ("approve", "status", "needed", "rejected_by", "words"),
    [
        (True, IncidentStatus.EXECUTING, 0, "", "as alice; it runs now"),
        (True, IncidentStatus.AWAITING_APPROVAL, 1, "", "1 more approval(s) needed"),
        (True, IncidentStatus.REJECTED, 0, "bob", "but bob rejected it at the same moment"),
        (True, IncidentStatus.ESCALATED, 0, "", "closed as escalated before running it"),
        (False, IncidentStatus.REJECTED, 0, "bob", "rejected plan 0123456789abcdef"),
    ],
)
def test_the_message_follows_the_workflow(
    approve: bool, status: IncidentStatus, needed: int, rejected_by: str, words: str
) -> None:
    message = said(approve, status, needed, rejected_by)
    assert words in message
    assert ("runs now" in message) is (status is IncidentStatus.EXECUTING)
