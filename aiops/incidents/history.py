"""The audit trail as the source of recent actions: every incident workflow answers the query
`actions` with what it ran, so budgets, cooldowns and anti-flapping need no second database.

Each query is answered by a worker (a closed incident is replayed for it), so asking every recent
incident costs O(incidents) per observation and O(incidents²) under a storm. Incidents whose
`AiopsStatus` says they cannot have acted yet (still investigating, planning or waiting for a
decision, or rejected before running anything), those whose plan was to escalate
(`AiopsPlaybook`), and those just started that have not yet run their first workflow task, are
skipped; incidents without the attributes a minute after start (unindexed) are still asked.
Where the namespace lacks the search attributes every incident is asked, as before.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from aiops.domain import IncidentStatus
from aiops.incidents.client import IncidentClient
from aiops.policy.evaluate import ActionRecord

# The workflow sets these before any step runs, and a rejection closes it before any step ran.
NOT_ACTED = (
    IncidentStatus.OPEN,
    IncidentStatus.INVESTIGATING,
    IncidentStatus.PLANNING,
    IncidentStatus.AWAITING_APPROVAL,
    IncidentStatus.REJECTED,
)


ESCALATE = "escalate"  # the built-in plan that changes nothing
# An indexed incident sets AiopsStatus in its first workflow task, before it can act; one still
# without it after this long is unindexed and is asked.
UNINDEXED_AFTER = timedelta(seconds=60)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


class TemporalHistory:
    def __init__(
        self,
        client: Client,
        limit: int = 500,
        parallel: int = 8,
        unindexed_after: timedelta = UNINDEXED_AFTER,
    ) -> None:
        self.client = client
        self.incidents = IncidentClient(client)
        self.limit = limit
        self.parallel = parallel
        self.unindexed_after = unindexed_after

    async def recent_actions(self, since: datetime) -> list[ActionRecord]:
        base = f"WorkflowType = 'IncidentWorkflow' AND StartTime > '{_stamp(since)}'"
        skipped = ", ".join(f"'{s.value}'" for s in NOT_ACTED)
        settled = _stamp(datetime.now(UTC) - self.unindexed_after)
        try:
            found = await self._list(
                f"{base} AND ((AiopsStatus IS NULL AND StartTime < '{settled}') OR "
                f"(AiopsStatus NOT IN ({skipped}) AND "
                f"(AiopsPlaybook IS NULL OR AiopsPlaybook != '{ESCALATE}')))"
            )
        except RPCError:  # the namespace has no AiopsStatus attribute: ask them all
            found = await self._list(base)
        limit = asyncio.Semaphore(self.parallel)

        async def actions_of(workflow_id: str, run_id: str | None) -> list[ActionRecord]:
            async with limit:
                try:
                    return await self.incidents.actions(workflow_id, run_id)
                except (RPCError, WorkflowQueryFailedError):
                    return []  # an incident from an older worker version without the query

        answers = await asyncio.gather(*(actions_of(wid, rid) for wid, rid in found))
        return [r for found_actions in answers for r in found_actions if r.at >= since]

    async def _list(self, query: str) -> list[tuple[str, str | None]]:
        return [
            (wf.id, wf.run_id) async for wf in self.client.list_workflows(query, limit=self.limit)
        ]
