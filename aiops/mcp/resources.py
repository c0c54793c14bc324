"""Resources: incident reports (incident://ID) and the playbooks (playbooks://all and
playbook://ID), as JSON."""

from __future__ import annotations

import json

from fastmcp import FastMCP
from fastmcp.exceptions import ResourceError, ToolError

from aiops.mcp.backends import Backends
from aiops.mcp.incidents import read_incident
from aiops.mcp.views import incident_view


def register(mcp: FastMCP, b: Backends) -> None:
    @mcp.resource("incident://{incident_id}", mime_type="application/json", name="incident-report")
    async def incident_report(incident_id: str) -> str:
        """An incident: anomalies, root cause, plan, policy decision, status and outcome."""
        try:
            detail = await read_incident(await b.temporal(), incident_id)
        except ToolError as exc:
            raise ResourceError(str(exc)) from None
        return incident_view(detail, b.settings).model_dump_json(indent=1)

    @mcp.resource("playbooks://all", mime_type="application/json", name="playbooks")
    def all_playbooks() -> str:
        """Every allow-listed playbook in force, in full."""
        try:
            books = b.playbooks()
        except ToolError as exc:
            raise ResourceError(str(exc)) from None
        return json.dumps(
            {
                "version": books.version(),
                "playbooks": {
                    k: p.model_dump(mode="json") for k, p in sorted(books.playbooks.items())
                },
            },
            indent=1,
        )

    @mcp.resource("playbook://{playbook_id}", mime_type="application/json", name="playbook")
    def one_playbook(playbook_id: str) -> str:
        """One playbook in full: matches, parameters, preconditions, steps, verification."""
        try:
            books = b.playbooks()
        except ToolError as exc:
            raise ResourceError(str(exc)) from None
        book = books.playbooks.get(playbook_id)
        if book is None:
            raise ResourceError(
                f"no playbook {playbook_id!r}; known: {', '.join(sorted(books.playbooks))}"
            )
        return json.dumps(book.model_dump(mode="json"), indent=1)
