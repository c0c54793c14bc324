"""Who is calling: bearer tokens over HTTP, the local user over stdio.

Over streamable HTTP every request carries `Authorization: Bearer <token>`; settings.mcp.tokens
maps the token to a principal (e.g. alice@example.com), and the policy's identities map the
principal (their `mcp:` names) to a person. Over stdio the server runs as the person who
started it (Claude Desktop, an IDE), like the CLI: the holder of the key in
settings.signing.cli_key, mapped through the policy's `cli:` keys. Roles: `approver` when the
person appears among the approvers of the policy (rules, default approvers, groups), else
`viewer`. The workflow's `decide` validator still has the last word on each incident.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

from fastmcp.server.auth import TokenVerifier
from fastmcp.server.auth.auth import AccessToken
from fastmcp.server.dependencies import get_access_token, get_http_request

from aiops.config import Settings
from aiops.policy import resolve_identity
from aiops.policy.models import Policy

Role = Literal["viewer", "approver"]


class SettingsTokenVerifier(TokenVerifier):
    """Accepts exactly the tokens of settings.mcp.tokens (compared in constant time)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        super().__init__()
        if any(not t.strip() or not who.strip() for t, who in tokens.items()):
            # Settings refuse these already; a blank token would let a bare "Bearer" in.
            raise ValueError("MCP tokens and their identities must not be empty or whitespace")
        self._tokens = [(t.encode(), who) for t, who in tokens.items()]

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token.strip():
            return None
        given = token.encode()
        found = None
        for known, who in self._tokens:
            if hmac.compare_digest(given, known):
                found = who
        if found is None:
            return None
        return AccessToken(token=token, client_id=found, scopes=[], expires_at=None)


def build_auth(settings: Settings) -> SettingsTokenVerifier | None:
    """Bearer-token auth for HTTP when tokens are configured (stdio ignores it)."""
    return SettingsTokenVerifier(settings.mcp.tokens) if settings.mcp.tokens else None


@dataclass(frozen=True)
class Caller:
    principal: str | None  # the token's identity, or the local user
    identity: str | None  # the person in the policy, when the principal maps to one
    role: Role
    transport: Literal["http", "local"]

    def describe(self) -> str:
        who = self.principal or "an anonymous client"
        if self.identity is None:
            return f"{who} (not a person in the policy's approvals.identities)"
        return f"{who} (policy identity {self.identity}, role {self.role})"


def approvers_of(policy: Policy) -> set[str]:
    appr = policy.approvals
    names = list(appr.default_approvers)
    for rule in appr.rules:
        names.extend(rule.approvers)
    return appr.expand(names) & set(appr.identities)


def local_key(settings: Settings) -> str | None:
    """The public key of the local person's signing key, if they have one."""
    from aiops.incidents.signing import KeyFileError, load_key_file, public_key

    try:
        return public_key(load_key_file(settings.signing.cli_key, personal=True))
    except KeyFileError:
        return None


def current_caller(settings: Settings, policy: Policy) -> Caller:
    try:
        get_http_request()
        over_http = True
    except RuntimeError:
        over_http = False
    if over_http:
        token = get_access_token()
        principal = token.client_id if token is not None else None
        identity = resolve_identity(policy, "mcp", principal) if principal else None
    else:
        principal = local_key(settings)
        identity = resolve_identity(policy, "cli", principal) if principal else None
    role: Role = (
        "approver" if identity is not None and identity in approvers_of(policy) else "viewer"
    )
    return Caller(
        principal=principal,
        identity=identity,
        role=role,
        transport="http" if over_http else "local",
    )
