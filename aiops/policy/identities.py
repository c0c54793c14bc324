"""Who may decide, and who vouches for them: people, the names they go by on each channel, and
the front doors trusted to say so.

A person is an entry under `approvals.identities`. Slack user ids and MCP principals are vouched
for by a front door (the Slack app, the MCP server) that authenticated the person and signs the
decision with its own key; the CLI has no front door: a person signs with their own key, and the
policy lists that key (or its fingerprint) under their `cli:` names. Keys are ed25519 public keys
written `ed25519:<base64 of the 32 raw bytes>`, as `aiops key generate` prints them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

KEY_PREFIX = "ed25519:"
FINGERPRINT_PREFIX = "sha256:"
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{32}")

Channel = Literal["slack", "mcp", "cli"]
DoorChannel = Literal["slack", "mcp"]


class KeyFormatError(ValueError):
    """Not a public key in the form the policy takes; the message says what is expected."""


def public_key_bytes(text: str) -> bytes:
    """The 32 raw bytes of an `ed25519:<base64>` public key."""
    if not text.startswith(KEY_PREFIX):
        raise KeyFormatError(
            f"{text[:24]!r} is not an ed25519 public key: keys are written "
            f"'{KEY_PREFIX}<base64>', as `aiops key generate` prints them"
        )
    try:
        raw = base64.b64decode(text.removeprefix(KEY_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyFormatError(f"{text[:24]!r}...: the key is not valid base64 ({exc})") from exc
    if len(raw) != 32:
        raise KeyFormatError(
            f"{text[:24]!r}...: an ed25519 public key has 32 bytes, not {len(raw)}"
        )
    return raw


def key_text(raw: bytes) -> str:
    return KEY_PREFIX + base64.b64encode(raw).decode()


def fingerprint(key: str) -> str:
    """A short, stable name for a public key (what a policy may list instead of the key)."""
    return FINGERPRINT_PREFIX + hashlib.sha256(public_key_bytes(key)).hexdigest()[:32]


def is_key_or_fingerprint(text: str) -> bool:
    if _FINGERPRINT.fullmatch(text):
        return True
    try:
        public_key_bytes(text)
    except KeyFormatError:
        return False
    return True


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Identity(_Strict):
    """One person, and the names they go by on each channel."""

    slack: list[str] = Field(default_factory=list, description="Slack user ids, e.g. U012AB3CD")
    mcp: list[str] = Field(default_factory=list, description="principals of MCP bearer tokens")
    cli: list[str] = Field(
        default_factory=list,
        description="the person's own public keys (ed25519:...) or their fingerprints "
        "(sha256:...); `aiops key generate` prints both",
    )

    def not_keys(self) -> list[str]:
        """`cli:` entries that are no key. Checked when a policy file is loaded, not when a
        snapshot is decoded: incidents started before CLI decisions were signed carry plain
        names, and must still replay (those names simply match no key)."""
        return [name for name in self.cli if not is_key_or_fingerprint(name)]

    def names(self, channel: Channel) -> list[str]:
        found: list[str] = getattr(self, channel)
        return found

    def knows_key(self, key: str) -> bool:
        """Whether this person signs with `key` on the CLI (listed as the key or its print)."""
        if key in self.cli:
            return True
        try:
            return fingerprint(key) in self.cli
        except KeyFormatError:
            return False


class FrontDoor(_Strict):
    """A service that authenticates people (the MCP server over HTTP, the Slack app) and signs
    the decisions it forwards with its own key."""

    name: str = Field(min_length=1, description="for the audit trail, e.g. slack-app")
    channel: DoorChannel
    key: str = Field(description="the door's public key, ed25519:...")

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        public_key_bytes(key)
        return key
