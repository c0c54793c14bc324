"""Safety controls that must act at once, on the real dev server: the kill switch stops an
incident already waiting for approval, a time from outside never stretches a wait, and anomalies
that join after planning are investigated (a second fault opens a follow-up incident)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.incident import IncidentActivities
from aiops.domain import (
    FaultType,
    Incident,
    IncidentStatus,
    RcaReport,
)
from aiops.incidents import IncidentClient
from aiops.incidents.errors import IncidentNotFoundError
from aiops.incidents.reader import read_anomalies
from aiops.integrations.kubernetes import KubernetesExecutor
from tests.incident_fixtures import (
    FixedInvestigator,
    KillSwitch,
    approve,
    key_of,
    pending,
    restarted_by,
    start,
    workload_anomaly,
)
from tests.servers import MetricsTarget
from tests.workflows.recording import replay_and_record
from workflows import IncidentWorkflow
from workflows.incident import AnomalyBatch


async def test_the_kill_switch_stops_an_incident_already_waiting_for_approval(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    executor: KubernetesExecutor,
    kill_switch: KillSwitch,
    healthy_cart: MetricsTarget,
) -> None:
    handle = await start(temporal_client, task_queue, rules)
    request = await pending(handle)
    assert not request.decision.reasons or "kill switch" not in " ".join(request.decision.reasons)
    kill_switch.on = True  # flipped in the policy file while the incident waits
    result = await approve(handle, "alice", request)
    assert result.status is IncidentStatus.ESCALATED, "the approver hears nothing ran"
    report = await handle.result()
    assert report.status is IncidentStatus.ESCALATED
    assert report.steps == []
    assert await handle.query(IncidentWorkflow.actions) == []
    assert restarted_by(executor) != key_of(handle)
    [stopped] = [e for e in report.audit if "not run" in e.what]
    assert stopped.actor == "policy"
    assert "the kill switch is on in the policy now" in stopped.what
    assert "a person takes over" in stopped.what
    await replay_and_record(handle, "incident-kill-switch-stopped")


@pytest.mark.parametrize("fault", [FaultType.ERRORS])  # no remedy: the incident waits to settle
async def test_an_opening_time_from_outside_never_stretches_a_wait(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
) -> None:
    """Opened "in 2030" by a skewed clock: the settle wait counts from now, not 1,120 days
    (year 9999, which overflowed, goes through the intake in tests/incidents)."""
    opened_at = datetime(2030, 1, 1, tzinfo=UTC)
    handle = await start(temporal_client, task_queue, rules, opened_at=opened_at, settle_s=2)
    report = await asyncio.wait_for(handle.result(), 60)
    assert report.status is IncidentStatus.ESCALATED
    assert any("looking again in 2 s" in e.what for e in report.audit), report.audit
    await replay_and_record(handle, "incident-clock-bounded")


class EntityInvestigator(FixedInvestigator):
    """Blames the workload of the incident's strongest anomaly, with the fault it has."""

    FAULTS = {"cartservice": FaultType.MEMORY, "checkoutservice": FaultType.BAD_ROLLOUT}

    async def investigate(self, incident: Incident) -> RcaReport:
        top = max(incident.anomalies, key=lambda a: a.score).entity
        self.target, self.fault = top, self.FAULTS.get(top, FaultType.ERRORS)
        return await super().investigate(incident)


def batch(workload: str) -> AnomalyBatch:
    return AnomalyBatch(anomalies=[workload_anomaly(workload)])


async def opened_follow_up(
    handle: WorkflowHandle[Any, Any], incidents: IncidentClient, follow_up: str
) -> Incident:
    """The follow-up incident `handle` opened, once it is there (30 s at most)."""
    for _ in range(120):
        with contextlib.suppress(IncidentNotFoundError):
            opened, _ = await read_anomalies(incidents, follow_up)
            return opened
        await asyncio.sleep(0.25)
    raise AssertionError(f"no follow-up incident: {await handle.query(IncidentWorkflow.audit)}")


async def test_a_second_fault_that_joins_after_planning_opens_a_follow_up(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> None:
    acts.investigator = EntityInvestigator()
    handle = await start(temporal_client, task_queue, rules)
    request = await pending(handle)
    assert request.plan.target == "cartservice"

    # The same fault spreading: investigated, nothing new, no second incident.
    await handle.signal(IncidentWorkflow.add_anomalies, batch("cartservice"))
    # A second fault in the same namespace while the first plan waits for a person.
    await handle.signal(IncidentWorkflow.add_anomalies, batch("checkoutservice"))
    follow_up = f"{handle.id}-f{str(handle.result_run_id)[:8]}"
    incidents = IncidentClient(temporal_client, task_queue)
    opened = await opened_follow_up(handle, incidents, follow_up)
    assert {a.entity for a in opened.anomalies} == {"checkoutservice"}
    audit = [e.what for e in await handle.query(IncidentWorkflow.audit)]
    assert any(
        "point to another root cause, checkoutservice (bad_rollout): follow-up incident "
        f"{follow_up} opened" in a
        for a in audit
    ), audit
    # The first incident carries on with its own plan, unchanged.
    assert (await pending(handle)).plan_hash == request.plan_hash
    # The follow-up investigates the second fault on its own (here it escalates: the lab's
    # checkoutservice has no earlier release to roll back to).
    second = await incidents.handle(follow_up).result()
    assert second.rca is not None and second.rca.top is not None
    assert second.rca.top.target == "checkoutservice"
    await approve(handle, "alice", request)
    # Joins while the plan executes or verifies: looked at before the incident closes.
    await handle.signal(IncidentWorkflow.add_anomalies, batch("cartservice"))
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED
    whats = [e.what for e in report.audit]
    own = "1 anomalies that joined later are about cartservice, the root cause this incident"
    assert sum(own in w for w in whats) == 2, whats  # one while waiting, one before closing
    assert whats[-1] == "incident closed: resolved"
    await replay_and_record(handle, "incident-late-anomaly-follow-up")


class CallerInvestigator(EntityInvestigator):
    """The late anomalies' investigation as the lab shows it: a caller with errors first and,
    next, the service its errors come from."""

    NEXT = {"frontend": "cartservice", "emailservice": "paymentservice"}

    async def investigate(self, incident: Incident) -> RcaReport:
        report = await super().investigate(incident)
        nxt = self.NEXT.get(self.target)
        if report.top is None or nxt is None:
            return report
        second = report.top.model_copy(update={"target": nxt, "confidence": 0.5})
        return report.model_copy(update={"hypotheses": [report.top, second]})


async def test_callers_that_join_late_with_errors_from_the_root_cause_open_no_follow_up(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
) -> None:
    """The callers' error ratio of a bad cart joins after planning: their investigation finds
    errors with no cause of their own and cartservice next, so no one is paged for them; a
    caller whose errors lead elsewhere still opens a follow-up."""
    acts.investigator = CallerInvestigator()
    handle = await start(temporal_client, task_queue, rules)
    request = await pending(handle)
    assert request.plan.target == "cartservice"
    follow_up = f"{handle.id}-f{str(handle.result_run_id)[:8]}"
    incidents = IncidentClient(temporal_client, task_queue)

    await handle.signal(IncidentWorkflow.add_anomalies, batch("frontend"))
    symptoms = "frontend shows errors with no cause of its own, and the next suspect is cartservice"
    for _ in range(120):
        audit = [e.what for e in await handle.query(IncidentWorkflow.audit)]
        if any(symptoms in a for a in audit):
            break
        await asyncio.sleep(0.25)
    else:
        raise AssertionError(f"the late callers were not judged symptoms: {audit}")
    with pytest.raises(IncidentNotFoundError):
        await read_anomalies(incidents, follow_up)

    await handle.signal(IncidentWorkflow.add_anomalies, batch("emailservice"))
    opened = await opened_follow_up(handle, incidents, follow_up)
    assert {a.entity for a in opened.anomalies} == {"emailservice"}
    await approve(handle, "alice", request)
    report = await handle.result()
    assert report.status is IncidentStatus.RESOLVED
    await replay_and_record(handle, "incident-late-symptoms")
