"""Write tools (annotated destructive, tagged `remediation`), registered only when
settings.mcp.enable_write_tools is on. They decide on the pending plan through the workflow's
`decide` update; the caller's identity comes from the authenticated connection, never from an
argument, and the workflow's validator has the last word (approver list, plan hash, expiry)."""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations

from aiops.approvals.incidents import IncidentError, decide
from aiops.mcp.auth import Caller, current_caller
from aiops.mcp.backends import Backends
from aiops.mcp.incidents import check_id

DESTRUCTIVE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
TAGS = {"remediation"}
MAX_REASON = 500


def _approver(b: Backends) -> Caller:
    caller = current_caller(b.settings, b.policy())
    if caller.role != "approver" or caller.identity is None:
        raise ToolError(
            f"refused: {caller.describe()} does not have the approver role; ask someone among "
            "the policy's approvers, or have your MCP token mapped to an approver identity "
            "(policy approvals.identities.<name>.mcp)")
    return caller


def register(mcp: FastMCP, b: Backends) -> None:
    async def _decide(incident_id: str, approve: bool, plan_hash: str | None,
                      reason: str) -> dict[str, Any]:
        incident_id = check_id(incident_id)
        if len(reason) > MAX_REASON:
            raise ToolError(f"reason is {len(reason)} characters; keep it under {MAX_REASON}")
        if plan_hash is not None and not (len(plan_hash) == 16 and all(
                c in "0123456789abcdef" for c in plan_hash)):
            raise ToolError(f"plan_hash {plan_hash[:40]!r} is not a plan hash (16 hex digits); "
                            "get_incident shows the pending plan's hash")
        caller = _approver(b)
        assert caller.identity is not None
        try:
            message = await decide(await b.temporal(), incident_id, approve=approve,
                                   identity=caller.identity, channel="mcp",
                                   plan_hash=plan_hash, reason=reason)
        except IncidentError as exc:
            raise ToolError(str(exc).replace("`aiops incidents list`", "list_incidents")) \
                from exc
        return {"result": message, "decided_by": caller.identity}

    @mcp.tool(annotations=DESTRUCTIVE, tags=TAGS)
    async def approve_remediation(incident_id: str, plan_hash: str | None = None,
                                  reason: str = "") -> dict[str, Any]:
        """Approve the plan awaiting a decision on an incident, as yourself (the identity of
        your MCP token). Pass the plan_hash you reviewed with get_incident, so a plan that
        changed since is not approved by mistake. The plan runs when enough approvals are in."""
        return await _decide(incident_id, True, plan_hash, reason)

    @mcp.tool(annotations=DESTRUCTIVE, tags=TAGS)
    async def reject_remediation(incident_id: str, reason: str,
                                 plan_hash: str | None = None) -> dict[str, Any]:
        """Reject the plan awaiting a decision on an incident, with a reason for the record.
        Nothing runs; the incident closes as rejected."""
        if not reason.strip():
            raise ToolError("give a reason for the rejection; it goes into the audit trail")
        return await _decide(incident_id, False, plan_hash, reason)
