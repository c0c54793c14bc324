"""Write tools (annotated destructive, tagged `remediation`), registered only when
settings.mcp.enable_write_tools is on. They decide on the pending plan through the incident
client's `decide`: over HTTP the server vouches for the caller its bearer token authenticated,
signing with its front-door key (settings.signing.mcp_key); over stdio it runs as the local
person and signs with their own key. The caller is never an argument, and the workflow's
validator has the last word (proof, approver list, plan hash, expiry)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from temporalio.service import RPCError

from aiops.activities.contracts import RulesSnapshot
from aiops.domain import Anomaly, Direction, Incident, Severity
from aiops.incidents import DecisionSigner, IncidentClient, IncidentError, KeyFileError
from aiops.incidents.intake import search_attributes_ready
from aiops.mcp.auth import Caller, current_caller
from aiops.mcp.backends import Backends
from aiops.mcp.incidents import check_id

DESTRUCTIVE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
TAGS = {"remediation"}
MAX_REASON = 500
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def _approver(b: Backends) -> Caller:
    caller = current_caller(b.settings, b.policy())
    if caller.role != "approver" or caller.identity is None:
        raise ToolError(
            f"refused: {caller.describe()} does not have the approver role; ask someone among "
            "the policy's approvers, or have your MCP token mapped to an approver identity "
            "(policy approvals.identities.<name>.mcp)"
        )
    return caller


def _signer(b: Backends, caller: Caller) -> DecisionSigner:
    """Who vouches for the caller: this server's front-door key over HTTP (its tokens
    authenticated the caller), the local person's own key over stdio."""
    signing = b.settings.signing
    try:
        if caller.transport == "http":
            if signing.mcp_key is None:
                raise ToolError(
                    "refused: this MCP server has no front-door key, so it cannot vouch for "
                    "you; its operator sets AIOPS_SIGNING__MCP_KEY (made by `aiops key "
                    "generate`) and lists the public key under approvals.front_doors"
                )
            return DecisionSigner.front_door(signing.mcp_key, "mcp")
        return DecisionSigner.person(signing.cli_key)
    except KeyFileError as exc:
        raise ToolError(f"refused: {exc}") from exc


def register(mcp: FastMCP, b: Backends) -> None:
    async def _decide(
        incident_id: str, approve: bool, plan_hash: str | None, reason: str
    ) -> dict[str, Any]:
        incident_id = check_id(incident_id)
        if len(reason) > MAX_REASON:
            raise ToolError(f"reason is {len(reason)} characters; keep it under {MAX_REASON}")
        if plan_hash is not None and not (
            len(plan_hash) == 16 and all(c in "0123456789abcdef" for c in plan_hash)
        ):
            raise ToolError(
                f"plan_hash {plan_hash[:40]!r} is not a plan hash (16 hex digits); "
                "get_incident shows the pending plan's hash"
            )
        caller = _approver(b)
        signer = _signer(b, caller)
        incidents = IncidentClient(await b.temporal(), b.settings.temporal.task_queue)
        try:
            outcome = await incidents.decide(
                incident_id,
                signer,
                approve=approve,
                principal=caller.principal if caller.transport == "http" else None,
                plan_hash=plan_hash,
                reason=reason,
            )
        except IncidentError as exc:
            message = str(exc)
            if message.startswith("no incident"):
                message += "; list_incidents shows them"
            raise ToolError(message) from exc
        return {"result": outcome.message, "decided_by": outcome.result.decided_by}

    @mcp.tool(annotations=DESTRUCTIVE, tags=TAGS)
    async def approve_remediation(
        incident_id: str, plan_hash: str | None = None, reason: str = ""
    ) -> dict[str, Any]:
        """Approve the plan awaiting a decision on an incident, as yourself (the identity of
        your MCP token). Pass the plan_hash you reviewed with get_incident, so a plan that
        changed since is not approved by mistake. The plan runs when enough approvals are in."""
        return await _decide(incident_id, True, plan_hash, reason)

    @mcp.tool(annotations=DESTRUCTIVE, tags=TAGS)
    async def reject_remediation(
        incident_id: str, reason: str, plan_hash: str | None = None
    ) -> dict[str, Any]:
        """Reject the plan awaiting a decision on an incident, with a reason for the record.
        Nothing runs; the incident closes as rejected."""
        if not reason.strip():
            raise ToolError("give a reason for the rejection; it goes into the audit trail")
        return await _decide(incident_id, False, plan_hash, reason)

    @mcp.tool(annotations=DESTRUCTIVE, tags=TAGS)
    async def propose_remediation(
        service: str, namespace: str, summary: str, severity: str = "warning"
    ) -> dict[str, Any]:
        """Open an incident for a service you believe is unhealthy: aiops investigates it,
        matches a playbook and the policy decides what may run and who must approve, exactly
        as for a detected anomaly. Returns the incident id; follow it with get_incident."""
        for value, what in ((service, "service"), (namespace, "namespace")):
            if not _NAME.fullmatch(value):
                raise ToolError(
                    f"{what} {value[:80]!r} is not a Kubernetes name; e.g. "
                    "'cartservice' in 'boutique'"
                )
        if not summary.strip() or len(summary) > MAX_REASON:
            raise ToolError(
                f"give a summary of what you observed (1 to {MAX_REASON} "
                "characters); it goes into the audit trail"
            )
        if severity not in {s.value for s in Severity}:
            raise ToolError(
                f"severity must be one of info, warning, critical; got {severity[:30]!r}"
            )
        caller = _approver(b)
        incident = _reported_incident(
            service, namespace, summary, Severity(severity), caller.identity or ""
        )
        rules = RulesSnapshot(policy=b.policy(), playbooks=b.playbooks())
        client = await b.temporal()
        incidents = IncidentClient(client, b.settings.temporal.task_queue)
        try:
            if await incidents.running(incident.id):
                return {"incident_id": incident.id, "result": "already open; see get_incident"}
            index = await search_attributes_ready(client)
            await incidents.open_or_join(incident, rules, index=index)
        except (IncidentError, RPCError) as exc:
            raise ToolError(f"{exc}; retry, or check `aiops doctor`") from exc
        return {
            "incident_id": incident.id,
            "result": f"incident opened by {caller.identity}; "
            "aiops investigates and plans now, and the policy decides what may run",
        }


def _reported_incident(
    service: str, namespace: str, summary: str, severity: Severity, identity: str
) -> Incident:
    from aiops.profiles import builtin_assembly

    now = datetime.now(UTC)
    # The query the person can look at first: the workload's error ratio, in whichever
    # metric profile the cluster has.
    errors = builtin_assembly().by_name()["error_ratio"]
    anomaly = Anomaly(
        signal="reported_by_person",
        series={"workload": service, "namespace": namespace},
        query=errors.render({"namespace": namespace, "workload": service}, "5m"),
        start=now,
        score=1.0,
        direction=Direction.BOTH,
        blamed_dimensions=[f"reported by {identity}: {summary.strip()}"],
    )
    # One proposal per service and minute: a second call within the minute finds it open.
    return Incident(
        id=f"incident-{anomaly.fingerprint()}-{now:%Y%m%d%H%M}",
        fingerprint=anomaly.fingerprint(),
        namespace=namespace,
        service=service,
        opened_at=now,
        anomalies=[anomaly],
        severity=severity,
    )
