"""Proof of who decided: what a signed decision covers, and the checks that make it count.

Pure and deterministic (the workflow's `decide` validator runs it on the rules snapshot the
incident started with): no clock, no files, no randomness; `now` and the nonces already used are
passed in. The signer (aiops.incidents.signing) builds its bytes with `claim_bytes` too, so both
sides sign and verify exactly the same thing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aiops.domain import Decision
from aiops.policy.identities import KeyFormatError, fingerprint, public_key_bytes
from aiops.policy.models import Policy

# Everything a decision says, except the signature itself and `identity` (the person, which the
# workflow derives from the proof and records; a sender cannot name it).
CLAIM_FIELDS = frozenset(
    {
        "approve",
        "plan_hash",
        "reason",
        "channel",
        "incident_id",
        "run_id",
        "principal",
        "issued_at",
        "nonce",
        "key",
    }
)
DOMAIN = b"aiops-decision-v1\n"  # a signature over a decision is never valid for anything else
MAX_AGE = timedelta(minutes=5)
MAX_AHEAD = timedelta(minutes=1)
MIN_NONCE = 16
SIGNED_CHANNELS = ("cli", "mcp", "slack")


def _load_lazy_parts() -> None:
    """cryptography's Rust core imports its exception types the first time it raises one,
    through whichever importer is in force. Inside Temporal's workflow sandbox that import
    fails and PyO3 aborts the whole worker process, so the first refused signature is raised
    here, when this module is imported outside the sandbox, and the type stays cached."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    try:
        key.verify(bytes(64), DOMAIN)
    except InvalidSignature:
        return
    raise RuntimeError("an all-zero signature verified: cryptography is broken")


_load_lazy_parts()


class Proof(NamedTuple):
    person: str
    vouched_by: str  # the front door's name, or "own key" for the CLI


class RefusedError(Exception):
    """The decision does not count; `kind` is the ApplicationError type clients map."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def claim_bytes(decision: Decision) -> bytes:
    claim = decision.model_dump(mode="json", include=set(CLAIM_FIELDS))
    return DOMAIN + json.dumps(claim, sort_keys=True, separators=(",", ":")).encode()


def person_of(decision: Decision, policy: Policy) -> str | None:
    """The person a (verified) decision speaks for. Decisions recorded before decisions were
    signed carry only the name their sender gave; they are met again only when such a history
    is replayed (the validator refuses them now), and count as they did then."""
    if not decision.signature:
        return decision.identity or None
    for name, who in policy.approvals.identities.items():
        if decision.channel == "cli":
            if who.knows_key(decision.key):
                return name
        elif decision.channel in ("mcp", "slack") and decision.principal in who.names(
            decision.channel
        ):
            return name
    return None


def check_proof(
    decision: Decision,
    policy: Policy,
    *,
    incident_id: str,
    run_id: str,
    now: datetime,
    used_nonces: set[str],
) -> Proof:
    """Who decided and who vouches for them, or a RefusedError saying why the decision does not
    count."""
    _check_signed(decision)
    voucher = vouched_by(decision, policy)
    try:
        public = Ed25519PublicKey.from_public_bytes(public_key_bytes(decision.key))
        public.verify(bytes.fromhex(decision.signature), claim_bytes(decision))
    except (InvalidSignature, ValueError, KeyFormatError) as exc:
        raise RefusedError(
            "ForgedDecision",
            f"the signature does not match the decision (altered or forged; key "
            f"{_print(decision.key)}): nothing was decided",
        ) from exc
    if decision.incident_id != incident_id or decision.run_id != run_id:
        raise RefusedError(
            "WrongIncident",
            f"the decision was signed for {decision.incident_id} run {decision.run_id[:8]}, "
            f"not for this incident ({incident_id} run {run_id[:8]}); decide on the incident "
            "as it is now",
        )
    if decision.issued_at is None or not (now - MAX_AGE <= decision.issued_at <= now + MAX_AHEAD):
        raise RefusedError(
            "StaleDecision",
            f"the decision was signed at {decision.issued_at}, outside "
            f"{MAX_AGE.total_seconds() / 60:.0f} min before to "
            f"{MAX_AHEAD.total_seconds() / 60:.0f} min after the workflow's time {now}; "
            "decide again (and check the clock of the machine that signed)",
        )
    if decision.nonce in used_nonces:
        raise RefusedError(
            "ReplayedDecision",
            "this signed decision was already received (same nonce): a replay counts once",
        )
    person = person_of(decision, policy)
    if person is None:
        raise RefusedError(
            "NotMapped",
            f"{_principal(decision)} is not mapped to a person in the policy the incident "
            f"started with; add it under approvals.identities.<name>.{decision.channel}",
        )
    return Proof(person, voucher)


def _check_signed(decision: Decision) -> None:
    missing = [
        name
        for name, value in (
            ("signature", decision.signature),
            ("key", decision.key),
            ("nonce", decision.nonce),
            ("issued_at", decision.issued_at),
        )
        if not value
    ]
    if missing:
        raise RefusedError(
            "UnsignedDecision",
            f"the decision is not signed ({', '.join(missing)} missing): decisions count only "
            "with proof of who made them; decide through `aiops approve` with your key, the "
            "MCP server or the Slack app",
        )
    if decision.channel not in SIGNED_CHANNELS:
        raise RefusedError(
            "UnknownFrontDoor",
            f"channel {decision.channel!r} cannot vouch for anyone; decide through the CLI, "
            "MCP or Slack",
        )
    if len(decision.nonce) < MIN_NONCE:
        raise RefusedError(
            "UnsignedDecision", f"the nonce is shorter than {MIN_NONCE} characters: sign again"
        )


def vouched_by(decision: Decision, policy: Policy) -> str:
    """Who vouches for the principal: the person's own key (CLI), or a trusted front door."""
    if not decision.signature:
        return "nobody (unsigned)"
    if decision.channel == "cli":
        if decision.principal != decision.key:
            raise RefusedError(
                "UnknownFrontDoor",
                "a CLI decision speaks for the holder of its key only: its principal must be "
                "the key that signed it",
            )
        return "own key"
    for door in policy.approvals.front_doors:
        if door.channel == decision.channel and door.key == decision.key:
            return door.name
    raise RefusedError(
        "UnknownFrontDoor",
        f"key {_print(decision.key)} is not a trusted {decision.channel} front door in the "
        "policy the incident started with (approvals.front_doors)",
    )


def _print(key: str) -> str:
    try:
        return fingerprint(key)
    except KeyFormatError:
        return repr(key[:24])


def _principal(decision: Decision) -> str:
    if decision.channel == "cli":
        return f"CLI key {_print(decision.key)}"
    return f"{decision.channel} user {decision.principal!r}"
