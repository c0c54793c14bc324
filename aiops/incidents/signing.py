"""Signing decisions: the key files and the signer every front door uses.

A person's key (the CLI, and the MCP server over stdio, which runs as that person) lives in a
file only they can read, `~/.config/aiops/approver.key` by default; the policy lists its public
half. A front door (the MCP server over HTTP, the Slack app) has a key of its own, which the
policy trusts for its channel. Keys are ed25519 in PKCS#8 PEM, so `openssl genpkey -algorithm
ed25519` makes one too.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aiops.domain import Decision
from aiops.policy.identities import Channel, fingerprint, key_text
from aiops.policy.proof import claim_bytes


class KeyFileError(Exception):
    """A key file is missing, unreadable, too open or not an ed25519 key; the message says
    what to do."""


def public_key(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key_text(raw)


def generate_key_file(path: Path, *, force: bool = False) -> Ed25519PrivateKey:
    """A new key in `path`, readable by its owner only; an existing key is kept unless
    `force` (its public half stops working once the policy no longer lists it)."""
    if path.exists() and not force:
        raise KeyFileError(
            f"{path} already holds a key (public {public_key(load_key_file(path))}); "
            "pass --force to replace it"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    tmp.replace(path)
    return key


def load_key_file(path: Path, *, personal: bool = False) -> Ed25519PrivateKey:
    """The key in `path`. A personal key readable by anyone else is refused, as ssh does."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"no key at {path}: run `aiops key generate --file {path}` and put the public key "
            "it prints into the policy"
        ) from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read the key {path}: {exc.strerror}") from exc
    if personal and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path} can be read by others (mode {stat.filemode(mode)}): anyone who reads it "
            f"can decide as you; run `chmod 600 {path}`"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"{path} is not an unencrypted PEM private key ({exc}); make one with "
            "`aiops key generate`"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}; decisions need an ed25519 key")
    return key


@dataclass(frozen=True)
class DecisionSigner:
    """Signs decisions on one channel: as a person with their own key (`cli`), or as a front
    door (`mcp`, `slack`) vouching for the principal it authenticated."""

    key: Ed25519PrivateKey
    channel: Channel

    @classmethod
    def person(cls, path: Path) -> DecisionSigner:
        return cls(load_key_file(path, personal=True), "cli")

    @classmethod
    def front_door(cls, path: Path, channel: Channel) -> DecisionSigner:
        return cls(load_key_file(path), channel)

    @property
    def public_key(self) -> str:
        return public_key(self.key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def sign(
        self,
        *,
        incident_id: str,
        run_id: str,
        plan_hash: str,
        approve: bool,
        reason: str = "",
        principal: str | None = None,
        now: datetime | None = None,
    ) -> Decision:
        """A decision on one incident run's plan, for `principal` (a front door's
        authenticated user; a person's key speaks only for itself)."""
        if self.channel == "cli":
            if principal is not None:
                raise ValueError("a person's key speaks for its holder only: pass no principal")
            principal = self.public_key
        elif not principal:
            raise ValueError(f"a {self.channel} front door signs for the user it authenticated")
        unsigned = Decision(
            approve=approve,
            plan_hash=plan_hash,
            channel=self.channel,
            reason=reason,
            incident_id=incident_id,
            run_id=run_id,
            principal=principal,
            issued_at=now or datetime.now(UTC),
            nonce=secrets.token_hex(16),
            key=self.public_key,
        )
        signature = self.key.sign(claim_bytes(unsigned)).hex()
        return unsigned.model_copy(update={"signature": signature})
