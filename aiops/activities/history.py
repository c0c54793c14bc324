"""The audit trail as the source of recent actions: every incident workflow answers the query
`actions` with what it ran, so budgets, cooldowns and anti-flapping need no second database."""

from __future__ import annotations

from datetime import datetime

from temporalio.client import Client
from temporalio.service import RPCError

from aiops.policy.evaluate import ActionRecord


class TemporalHistory:
    def __init__(self, client: Client, limit: int = 500) -> None:
        self.client = client
        self.limit = limit

    async def recent_actions(self, since: datetime) -> list[ActionRecord]:
        query = (f"WorkflowType = 'IncidentWorkflow' AND StartTime > "
                 f"'{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'")
        records: list[ActionRecord] = []
        async for wf in self.client.list_workflows(query, limit=self.limit):
            handle = self.client.get_workflow_handle(wf.id, run_id=wf.run_id)
            try:
                found = await handle.query("actions", result_type=list[ActionRecord])
            except RPCError:
                continue  # an incident from an older worker version without the query
            records.extend(r for r in found if r.at >= since)
        return records
