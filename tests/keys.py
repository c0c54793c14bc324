"""Signing keys for tests: one fixed ed25519 key per name (the same on every run, so a policy
written in a test can list it), and decisions signed with them as the CLI would."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import WorkflowHandle

from aiops.domain import Decision
from aiops.incidents.signing import DecisionSigner
from aiops.policy.identities import Channel


def private_key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"test:{name}".encode()).digest())


def signer(name: str, channel: Channel = "cli") -> DecisionSigner:
    """`name`'s own key (channel cli), or the key of a front door called `name`."""
    return DecisionSigner(private_key(name), channel)


def public(name: str) -> str:
    return signer(name).public_key


async def signed(
    handle: WorkflowHandle[Any, Any],
    who: str,
    plan_hash: str,
    *,
    approve: bool = True,
    reason: str = "",
) -> Decision:
    """A decision on the run `handle` points at, signed with `who`'s own key."""
    run_id = handle.result_run_id or handle.run_id or (await handle.describe()).run_id
    return signer(who).sign(
        incident_id=handle.id, run_id=run_id, plan_hash=plan_hash, approve=approve, reason=reason
    )


def write_key(name: str, path: Path) -> Path:
    """`name`'s key as a private key file (0600), as `aiops key generate` writes one."""
    pem = private_key(name).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)
    return path
