"""What an approver sees in the approval message, before any Slack is involved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.approvals.slack.blocks import (
    ACTIONS_BLOCK,
    APPROVE,
    REJECT,
    ButtonValue,
    ButtonValueError,
    approval_blocks,
    approvals_status,
    outcome_text,
    with_status,
)
from aiops.domain import (
    ApprovalRequest,
    Evidence,
    FaultType,
    Hypothesis,
    PolicyDecision,
    RcaReport,
    RemediationPlan,
    RiskLevel,
    Step,
    TimeoutAction,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def request(
    approved_by: list[str] | None = None, diff: str = "replicas: 2 -> 2"
) -> ApprovalRequest:
    plan = RemediationPlan(
        incident_id="incident-abc",
        playbook_id="restart-leaking-pod",
        namespace="boutique",
        target="cartservice",
        risk=RiskLevel.HIGH,
        steps=[
            Step(
                action="k8s.rollout_restart",
                description="restart <cart>",
                args={"kind": "Deployment", "namespace": "boutique", "name": "cartservice"},
            )
        ],
    )
    return ApprovalRequest(
        incident_id="incident-abc",
        plan_hash=plan.plan_hash(),
        plan=plan,
        decision=PolicyDecision(
            allowed=True,
            requires_approval=True,
            approvals_required=2,
            approvers=["alice", "bob"],
            approval_timeout_s=600,
            on_timeout=TimeoutAction.ESCALATE,
            reasons=["high-risk-two-person: 2 approvals"],
            policy_version="p1",
        ),
        requested_at=NOW,
        expires_at=NOW + timedelta(minutes=10),
        dry_run=[diff],
        approved_by=approved_by or [],
    )


REPORT = RcaReport(
    incident_id="incident-abc",
    summary="cartservice leaks memory",
    started_at=NOW,
    finished_at=NOW,
    hypotheses=[
        Hypothesis(
            target="cartservice",
            namespace="boutique",
            fault=FaultType.MEMORY,
            confidence=0.9,
            evidence=[
                Evidence(kind="metric", summary=f"signal {i}", source=f"q{i}", weight=i)
                for i in range(5)
            ],
        )
    ],
)


def text_of(blocks: list[dict[str, object]]) -> str:
    return repr(blocks)


def buttons(blocks: list[dict[str, object]]) -> list[dict[str, str]]:
    return [e for b in blocks if b.get("type") == "actions" for e in b["elements"]]  # type: ignore[attr-defined]


def test_message_has_everything_needed_to_decide() -> None:
    req = request()
    blocks = approval_blocks(req, REPORT, ui_link="http://ui/namespaces/default/workflows/x")
    text = text_of(blocks)
    assert "cartservice leaks memory" in text
    assert "confidence 90%" in text
    # The three strongest pieces of evidence, strongest first; weaker ones left out.
    assert text.index("signal 4") < text.index("signal 3") < text.index("signal 2")
    assert "signal 1" not in text
    assert "restart-leaking-pod" in text and "k8s.rollout_restart" in text
    assert "replicas: 2 -> 2" in text
    assert "2 approval(s) from alice, bob" in text and "on timeout: escalate" in text
    assert f"<!date^{int(req.expires_at.timestamp())}^" in text
    assert "<http://ui/namespaces/default/workflows/x|Open in Temporal UI>" in text
    assert "0 of 2" in text
    assert [b["action_id"] for b in buttons(blocks)] == [APPROVE, REJECT]
    value = ButtonValue.decode(buttons(blocks)[0]["value"])
    assert (value.incident_id, value.plan_hash, value.expires_at) == (
        "incident-abc",
        req.plan_hash,
        req.expires_at,
    )


def test_user_text_cannot_inject_links_and_long_diffs_fit() -> None:
    blocks = approval_blocks(request(diff="x" * 10_000), REPORT)
    text = text_of(blocks)
    assert "restart &lt;cart&gt;" in text
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")  # type: ignore[index]
    assert "truncated" in text


def test_two_person_rule_shows_who_approved_so_far() -> None:
    assert "Approved by alice (1 of 2); waiting for one more of: bob" in approvals_status(
        ["alice"], 2, ["alice", "bob"]
    )
    assert "Approved by alice, bob (2 of 2)" in approvals_status(
        ["alice", "bob"], 2, ["alice", "bob"]
    )
    assert "1 of 2" in text_of(approval_blocks(request(["alice"]), REPORT))


def test_decided_message_keeps_the_facts_but_loses_the_buttons() -> None:
    blocks = approval_blocks(request(), REPORT)
    done = with_status(blocks, outcome_text("rejected", [], "by bob"), buttons=False)
    assert not any(b.get("block_id") == ACTIONS_BLOCK for b in done)
    assert "*rejected*: by bob" in text_of(done)
    assert "cartservice leaks memory" in text_of(done)
    assert len(done) == len(blocks) - 1


@pytest.mark.parametrize("raw", ["", "{}", '{"i": "x"}', "not json", '{"i":1,"p":2,"e":"z"}'])
def test_foreign_button_values_are_refused(raw: str) -> None:
    with pytest.raises(ButtonValueError):
        ButtonValue.decode(raw)
