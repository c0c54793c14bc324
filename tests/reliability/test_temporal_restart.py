"""The Temporal dev server restarted (same SQLite file, same port) while an incident waits for
approval: the wait survives, the worker process and the clients reconnect by themselves, and the
approval given after the restart runs the remediation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiops_lab.kubeapi.server import LabApiServer, write_kubeconfig
from temporalio.client import Client

from aiops.activities.contracts import RulesSnapshot
from aiops.domain import IncidentStatus
from aiops.integrations.kubernetes import KubernetesExecutor
from tests.incident_fixtures import approve, key_of, pending, restarted_by, start
from tests.reliability.processes import DevServer, WorkerProcess, wait_for_pollers, worker_env
from tests.servers import MetricsTarget, PrometheusServer
from workflows import IncidentWorkflow


async def test_approval_wait_survives_a_temporal_restart(
    dev_server: tuple[DevServer, Client],
    lab_api: LabApiServer,
    executor: KubernetesExecutor,
    rules: RulesSnapshot,
    prometheus: PrometheusServer,
    healthy_cart: MetricsTarget,
    tmp_path: Path,
) -> None:
    server, client = dev_server
    queue = "aiops-restart"
    env = worker_env(
        temporal=server.address,
        task_queue=queue,
        state_dir=tmp_path / "state",
        prometheus=prometheus.url,
        kubeconfig=write_kubeconfig(tmp_path / "kubeconfig", lab_api.url),
    )
    with WorkerProcess.fixed_rca(env, tmp_path / "worker.log") as worker:
        # Queries need a worker: on a loaded machine its start takes half a minute.
        await wait_for_pollers(client, queue, {worker.identity}, 120)
        handle = await start(client, queue, rules)
        request = await pending(handle, timeout_s=120)

        assert server.db_file.exists(), "the state lives in a SQLite file"
        server.stop()
        await asyncio.sleep(5)  # the worker's polls fail for a while
        assert worker.alive, f"the worker gave up while Temporal was down:\n{worker.output()}"
        await server.start()  # same port, same temporal.db

        # The client from before the restart is used on purpose: it reconnects by itself.
        assert await handle.query(IncidentWorkflow.status) is IncidentStatus.AWAITING_APPROVAL
        after = await pending(handle, timeout_s=60)
        assert (after.plan_hash, after.expires_at) == (request.plan_hash, request.expires_at)
        assert restarted_by(executor) != key_of(handle), "nothing ran while waiting"
        await approve(handle, "alice", request)
        report = await asyncio.wait_for(handle.result(), 90)
        assert worker.alive, "one worker process rode out the restart"

    assert report.status is IncidentStatus.RESOLVED, report.audit
    assert report.verified is True
    assert restarted_by(executor) == key_of(handle)
    assert [d.identity for d in report.decisions] == ["alice"]
