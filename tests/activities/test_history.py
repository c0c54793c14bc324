"""Recent actions for budgets and cooldowns, read from the incidents' `actions` query on the real
dev server: an incident that ran a step is asked, incidents that cannot have acted are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
)

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.incident import IncidentActivities
from aiops.incidents.history import TemporalHistory
from aiops.playbooks.loader import PlaybookSet
from tests.incident_fixtures import approve, pending, reject, start
from tests.servers import MetricsTarget


class CountQueries(Interceptor):
    def __init__(self) -> None:
        self.asked: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        asked = self.asked

        class Counting(OutboundInterceptor):
            async def query_workflow(self, input: QueryWorkflowInput) -> Any:
                asked.append(input.id)
                return await super().query_workflow(input)

        return Counting(next)


async def test_only_incidents_that_may_have_acted_are_asked(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> None:
    acted = await start(temporal_client, task_queue, rules)
    await approve(acted, "alice", await pending(acted))
    await acted.result()
    rejected = await start(temporal_client, task_queue, rules)
    request = await pending(rejected)
    await reject(rejected, "bob", request)
    await rejected.result()
    waiting = await start(temporal_client, task_queue, rules)
    await pending(waiting)
    unindexed = await start(temporal_client, task_queue, rules, index=False)
    await approve(unindexed, "alice", await pending(unindexed))
    await unindexed.result()
    no_playbooks = RulesSnapshot(policy=rules.policy, playbooks=PlaybookSet(playbooks={}))
    escalated = await start(temporal_client, task_queue, no_playbooks)
    assert (await escalated.result()).plan.is_escalation

    counter = CountQueries()
    config = temporal_client.config()
    config["interceptors"] = [counter]
    history = TemporalHistory(Client(**config), unindexed_after=timedelta(0))
    records = await history.recent_actions(datetime.now(UTC) - timedelta(hours=1))

    mine = sorted(
        (r.incident_id, r.action) for r in records if r.incident_id in (acted.id, unindexed.id)
    )
    assert mine == sorted(
        [(acted.id, "k8s.rollout_restart"), (unindexed.id, "k8s.rollout_restart")]
    )
    assert acted.id in counter.asked
    assert unindexed.id in counter.asked, "without AiopsStatus it may have acted: asked"
    assert waiting.id not in counter.asked, "an incident waiting for approval ran nothing"
    assert rejected.id not in counter.asked, "a rejected incident ran nothing"
    assert escalated.id not in counter.asked, "an escalation plan changes nothing"
    await waiting.terminate("test over")
