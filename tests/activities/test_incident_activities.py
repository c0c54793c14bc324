"""The incident activities within their time: observing a target off the event loop (#14 item
13) and within its limit, and an investigation queue that never lets an incident time out
unreported (item 14)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiops_lab.kubeapi.server import LabApiServer, write_kubeconfig
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from aiops.activities.contracts import InvestigateInput, ObserveInput
from aiops.activities.incident import AgentInvestigator, IncidentActivities
from aiops.agent import AgentDeps
from aiops.config import PrometheusSettings
from aiops.domain import FaultType, Hypothesis, RcaReport
from aiops.incidents.history import TemporalHistory
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.prometheus import Prometheus
from tests.faultproxy import Delay, FaultProxy, anything
from tests.incident_fixtures import NS, make_incident
from tests.servers import PrometheusServer


def environment(limit_s: float) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, start_to_close_timeout=timedelta(seconds=limit_s))
    return env


async def test_observing_a_target_leaves_the_event_loop_free(
    lab_api: LabApiServer, tmp_path: Path
) -> None:
    """The worker's event loop runs every workflow task; a slow API server must not stall it."""
    with FaultProxy(lab_api.url) as slow:
        slow.add(anything, Delay(0.5))
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", slow.url)
        activities = IncidentActivities(
            executor=KubernetesExecutor.from_kubeconfig(str(kubeconfig))
        )
        now = datetime.now(UTC)
        report = RcaReport(
            incident_id="incident-observe",
            hypotheses=[
                Hypothesis(
                    target="cartservice", namespace=NS, fault=FaultType.MEMORY, confidence=0.9
                )
            ],
            summary="cartservice leaks memory",
            started_at=now,
            finished_at=now,
        )
        gaps: list[float] = []

        async def tick() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.02)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        observation = await environment(60).run(
            activities.observe_target, ObserveInput(incident_id="incident-observe", report=report)
        )
        took = time.monotonic() - started
        ticker.cancel()
    assert observation.target == f"Deployment/{NS}/cartservice"
    assert observation.observed.replicas == 2
    assert took >= 1.0, "the reads went through the slow proxy"
    assert max(gaps) < 0.4, f"the event loop stalled for {max(gaps):.2f} s"


async def test_investigations_queued_past_their_time_say_why(
    prometheus: PrometheusServer,
) -> None:
    """One investigation slot, investigations of about a second (a slow Prometheus), six
    incidents at once and a six-second activity limit: every incident answers within its
    limit, each either investigated or saying that it was not and why."""
    with FaultProxy(prometheus.url) as slow:
        slow.add(anything, Delay(1.0))
        metrics = Prometheus(PrometheusSettings(url=slow.url))
        investigator = AgentInvestigator(AgentDeps(metrics=metrics), parallel=1)
        activities = IncidentActivities(investigator=investigator)
        env = environment(6.0)
        incidents = [make_incident() for _ in range(6)]
        started = time.monotonic()

        async def investigate(n: int) -> tuple[RcaReport, float]:
            inp = InvestigateInput(incident=incidents[n])
            report = await env.run(activities.investigate_incident, inp)
            return report, time.monotonic() - started

        results = await asyncio.gather(*(investigate(n) for n in range(6)))
    skipped = [r for r, _ in results if r.summary.startswith("not investigated")]
    investigated = [r for r, _ in results if not r.summary.startswith("not investigated")]
    assert skipped and investigated, [r.summary for r, _ in results]
    assert max(took for _, took in results) < 6.0 - 1.0, [took for _, took in results]
    for report in skipped:
        assert "investigation slot(s)" in report.summary and report.notes
        assert report.hypotheses, "the anomalies are still ranked for the person deciding"
    assert all(r.generated_by == "deterministic" for r in investigated)


async def test_a_temporal_too_slow_to_list_the_others_fails_observe_with_the_reason() -> None:
    """Budgets and cooldowns need the other incidents' actions: when they cannot be read in
    time (here the Temporal frontend accepts connections and never answers), observing fails,
    to be retried, with the reason, before the activity's limit; it never goes on without them."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        client = await Client.connect(f"127.0.0.1:{hole.getsockname()[1]}", lazy=True)
        now = datetime.now(UTC)
        report = RcaReport(
            incident_id="incident-observe",
            hypotheses=[],
            summary="-",
            started_at=now,
            finished_at=now,
        )
        activities = IncidentActivities(history=TemporalHistory(client))
        started = time.monotonic()
        with pytest.raises(ApplicationError, match="could not be read within 3 s") as err:
            await environment(5.0).run(
                activities.observe_target,
                ObserveInput(incident_id="incident-observe", report=report),
            )
    assert err.value.type == "HistoryUnavailable" and not err.value.non_retryable
    assert time.monotonic() - started < 5.0
