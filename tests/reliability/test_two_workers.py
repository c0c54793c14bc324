"""Two worker processes on one task queue: incidents spread over both, and when one is
SIGKILLed halfway through, the other finishes every incident it had (none is lost)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiops_lab.kubeapi.server import LabApiServer, write_kubeconfig
from temporalio.client import Client, WorkflowHistory

from aiops.activities.contracts import RulesSnapshot
from aiops.domain import IncidentStatus
from tests.incident_fixtures import approve, pending, start
from tests.reliability.processes import (
    DevServer,
    WorkerProcess,
    wait_for_pollers,
    worked_on,
    worker_env,
)
from tests.servers import MetricsTarget, PrometheusServer

INCIDENTS = 20


def worked_on_since(history: WorkflowHistory, since: float) -> set[str]:
    later = WorkflowHistory(
        history.workflow_id,
        [e for e in history.events if e.event_time.ToMicroseconds() / 1e6 >= since],
    )
    return worked_on(later)


async def test_two_workers_share_incidents_and_losing_one_loses_none(
    dev_server: tuple[DevServer, Client],
    lab_api: LabApiServer,
    rules: RulesSnapshot,
    prometheus: PrometheusServer,
    healthy_cart: MetricsTarget,
    tmp_path: Path,
) -> None:
    server, client = dev_server
    queue = "aiops-pair"
    env = worker_env(
        temporal=server.address,
        task_queue=queue,
        state_dir=tmp_path / "state",
        prometheus=prometheus.url,
        kubeconfig=write_kubeconfig(tmp_path / "kubeconfig", lab_api.url),
    )
    doomed = WorkerProcess.fixed_rca(env, tmp_path / "worker-a.log").start()
    survivor = WorkerProcess.fixed_rca(env, tmp_path / "worker-b.log").start()
    try:
        await wait_for_pollers(client, queue, {doomed.identity, survivor.identity}, 120)
        handles = [await start(client, queue, rules) for _ in range(INCIDENTS)]
        requests = await asyncio.gather(*(pending(h, timeout_s=120) for h in handles))
        before = [worked_on(h) for h in await asyncio.gather(*(h.fetch_history() for h in handles))]
        assert sum(doomed.identity in ids for ids in before) > 0, "worker A got no incident"
        assert sum(survivor.identity in ids for ids in before) > 0, "worker B got no incident"

        half = INCIDENTS // 2
        await asyncio.gather(
            *(approve(h, "alice", r) for h, r in zip(handles[:half], requests[:half], strict=True))
        )
        first = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles[:half])), 120)

        doomed.kill()
        killed_at = time.time()
        await asyncio.gather(
            *(approve(h, "bob", r) for h, r in zip(handles[half:], requests[half:], strict=True))
        )
        rest = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles[half:])), 120)
    finally:
        doomed.stop()
        survivor.stop()

    reports = [*first, *rest]
    assert [r.status for r in reports] == [IncidentStatus.RESOLVED] * INCIDENTS, [
        (r.incident_id, r.status, r.audit[-2:]) for r in reports
    ]
    assert all(len(r.steps) == 1 and r.steps[0].ok and r.verified for r in reports)
    after = [
        worked_on_since(h, killed_at)
        for h in await asyncio.gather(*(h.fetch_history() for h in handles[half:]))
    ]
    assert all(ids == {survivor.identity} for ids in after), "only B works after A died"
    taken_over = [i for i, ids in enumerate(before[half:]) if doomed.identity in ids]
    assert taken_over, "none of the incidents left waiting had been on worker A"
