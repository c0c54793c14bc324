"""The MCP server: a thin client of the incident workflows for chat assistants.

It reads workflow state and (later) sends `decide` updates; it never touches the cluster itself.
"""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from aiops.config import Settings
from aiops.domain import ApprovalRequest
from aiops.integrations.temporal import TemporalUnavailableError, connect

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
MAX_LIST = 200


class _TemporalHandle:
    """Connects on first use, so the server starts even while Temporal is still coming up."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None

    async def get(self) -> Client:
        if self._client is None:
            try:
                self._client = await connect(self._settings.temporal)
            except TemporalUnavailableError as exc:
                raise ToolError(str(exc)) from exc
        return self._client


def create_server(settings: Settings) -> FastMCP:
    mcp = FastMCP(
        name="aiops",
        instructions=(
            "Investigate incidents that aiops detected in Prometheus and review their "
            "remediation plans. Every action is decided by policy and recorded in Temporal."
        ),
        mask_error_details=True,
    )
    temporal = _TemporalHandle(settings)

    @mcp.tool(annotations=READ_ONLY, tags={"investigate"})
    async def list_incidents(status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """List recent incidents (newest first), optionally only those with a given status
        (Running, Completed, Failed, Terminated, TimedOut)."""
        if not 1 <= limit <= MAX_LIST:
            raise ToolError(f"limit must be between 1 and {MAX_LIST}; got {limit}")
        query = "WorkflowType = 'IncidentWorkflow'"
        if status is not None:
            allowed = {"Running", "Completed", "Failed", "Terminated", "TimedOut", "Canceled"}
            if status not in allowed:
                raise ToolError(f"status must be one of {sorted(allowed)}; got {status!r}")
            query += f" AND ExecutionStatus = '{status}'"
        client = await temporal.get()
        found: list[dict[str, Any]] = []
        async for wf in client.list_workflows(query, limit=limit):
            found.append({
                "id": wf.id,
                "status": wf.status.name if wf.status else "UNKNOWN",
                "started_at": wf.start_time.isoformat(),
                "closed_at": wf.close_time.isoformat() if wf.close_time else None,
            })
        return found

    @mcp.tool(annotations=READ_ONLY, tags={"investigate"})
    async def get_incident(incident_id: str) -> dict[str, Any]:
        """The incident's status and, while it waits for a decision, the plan awaiting approval
        with its plan hash, dry-run preview and expiry."""
        client = await temporal.get()
        handle = client.get_workflow_handle(incident_id)
        try:
            desc = await handle.describe()
            status = await handle.query("status", result_type=str)
            pending = await handle.query("pending_approval", result_type=ApprovalRequest | None)  # type: ignore[arg-type]
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise ToolError(
                    f"no incident {incident_id!r}; list_incidents shows the known ids"
                ) from exc
            raise ToolError(f"Temporal could not answer for {incident_id!r}: {exc.message}") \
                from exc
        return {
            "id": incident_id,
            "workflow_status": desc.status.name if desc.status else "UNKNOWN",
            "status": status,
            "pending_approval": pending.model_dump(mode="json") if pending else None,
            "temporal_ui": f"{settings.temporal.ui_url}/namespaces/"
            f"{settings.temporal.namespace}/workflows/{incident_id}",
        }

    return mcp
