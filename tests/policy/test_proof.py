"""Proof of who decided, checked purely: a decision counts only when a key the policy trusts
signed exactly what it says, for this incident run, recently, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from aiops.domain import Decision
from aiops.incidents.signing import DecisionSigner
from aiops.policy.identities import fingerprint
from aiops.policy.loader import parse_policy
from aiops.policy.models import Policy
from aiops.policy.proof import RefusedError, check_proof, claim_bytes
from tests.incident_fixtures import policy_yaml
from tests.keys import public, signer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
INCIDENT, RUN = "incident-abc", "run-0123456789"


def policy() -> Policy:
    # alice signs with her key; bob is listed by his key's fingerprint; carol goes by two MCP
    # principals; the MCP server and the Slack app are trusted front doors.
    text = policy_yaml(
        names={
            "bob": {"cli": [fingerprint(public("bob"))], "slack": ["U0BOB"]},
            "carol": {"mcp": ["carol@example.com", "c.smith@example.com"]},
        },
        doors={"mcp-server": "mcp", "slack-app": "slack"},
    )
    return parse_policy(text)


def decide(who: DecisionSigner, principal: str | None = None, **claim: object) -> Decision:
    fields: dict[str, object] = {
        "incident_id": INCIDENT,
        "run_id": RUN,
        "plan_hash": "0123456789abcdef",
        "approve": True,
        "now": NOW,
    }
    fields.update(claim)
    return who.sign(principal=principal, **fields)  # type: ignore[arg-type]


def check(decision: Decision, used: set[str] | None = None) -> str:
    return check_proof(
        decision, policy(), incident_id=INCIDENT, run_id=RUN, now=NOW, used_nonces=used or set()
    ).person


def refused(decision: Decision, used: set[str] | None = None) -> str:
    with pytest.raises(RefusedError) as exc:
        check(decision, used)
    return exc.value.kind


def test_a_key_counts_as_the_person_the_policy_maps_it_to() -> None:
    assert check(decide(signer("alice"))) == "alice"
    assert check(decide(signer("bob"))) == "bob", "listed by its fingerprint"
    door = signer("mcp-server", "mcp")
    assert check(decide(door, "carol@example.com")) == "carol"
    assert check(decide(door, "c.smith@example.com")) == "carol", "two names, one person"
    assert check(decide(signer("slack-app", "slack"), "U0BOB")) == "bob"


def test_a_signed_decision_survives_the_trip_through_temporal() -> None:
    decision = decide(signer("alice"), reason="looks right ✓")
    converter = pydantic_data_converter.payload_converter
    [payload] = converter.to_payloads([decision])
    [back] = converter.from_payloads([payload], [Decision])
    assert check(back) == "alice"


def test_unsigned_and_self_named_decisions_do_not_count() -> None:
    bare = Decision(approve=True, plan_hash="0123456789abcdef", identity="alice", channel="cli")
    assert refused(bare) == "UnsignedDecision"
    legacy_channel = decide(signer("alice")).model_copy(update={"channel": "policy"})
    assert refused(legacy_channel) == "UnknownFrontDoor"


@pytest.mark.parametrize(
    "change",
    [
        {"plan_hash": "fedcba9876543210"},
        {"approve": False},
        {"reason": "changed after signing"},
        {"incident_id": "incident-other"},
        {"issued_at": NOW + timedelta(seconds=1)},
        {"signature": "00" * 64},
        {"signature": "not hex"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_anything_changed_after_signing_is_forged(change: dict[str, object]) -> None:
    assert refused(decide(signer("alice")).model_copy(update=change)) == "ForgedDecision"


def test_a_front_door_vouches_only_for_its_own_channel() -> None:
    mallory = signer("mallory", "mcp")  # a key the policy does not trust
    assert refused(decide(mallory, "alice@example.com")) == "UnknownFrontDoor"
    slack_key_as_mcp = DecisionSigner(signer("slack-app").key, "mcp")
    assert refused(decide(slack_key_as_mcp, "carol@example.com")) == "UnknownFrontDoor"
    unmapped = decide(signer("mcp-server", "mcp"), "dave@example.com")
    assert refused(unmapped) == "NotMapped"
    # A person's key is not a front door: it cannot speak for a Slack user.
    as_door = DecisionSigner(signer("alice").key, "slack")
    assert refused(decide(as_door, "U0BOB")) == "UnknownFrontDoor"


def test_a_cli_key_speaks_for_its_holder_only() -> None:
    alice = signer("alice")
    claim = decide(alice).model_copy(update={"principal": public("bob"), "signature": ""})
    resigned = claim.model_copy(update={"signature": alice.key.sign(_bytes(claim)).hex()})
    assert refused(resigned) == "UnknownFrontDoor"
    assert refused(decide(signer("mallory"))) == "NotMapped"


def test_other_incidents_runs_old_and_future_decisions_and_replays_are_refused() -> None:
    alice = signer("alice")
    assert refused(decide(alice, incident_id="incident-other")) == "WrongIncident"
    assert refused(decide(alice, run_id="run-earlier")) == "WrongIncident"
    assert refused(decide(alice, now=NOW - timedelta(minutes=6))) == "StaleDecision"
    assert refused(decide(alice, now=NOW + timedelta(minutes=2))) == "StaleDecision"
    assert check(decide(alice, now=NOW - timedelta(minutes=4))) == "alice"
    once = decide(alice)
    assert refused(once, used={once.nonce}) == "ReplayedDecision"


def _bytes(decision: Decision) -> bytes:

    return claim_bytes(decision)
