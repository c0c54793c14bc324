"""A worker process SIGKILLed in the middle of a remediation step: the step's change reached the
cluster but the worker died before reporting it. Temporal retries the step on the restarted
worker, the step's idempotency key makes the retry a no-op, and the incident completes with the
Deployment restarted exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from aiops_lab.kubeapi.server import LabApiServer, write_kubeconfig
from temporalio.api.enums.v1 import TimeoutType
from temporalio.client import Client

from aiops.activities.contracts import RulesSnapshot
from aiops.domain import IncidentStatus
from aiops.integrations.kubernetes import KubernetesExecutor
from tests.incident_fixtures import NS, approve, key_of, pending, restarted_by, start
from tests.reliability.processes import (
    DevServer,
    KubeApiGate,
    WorkerProcess,
    worked_on,
    worker_env,
)
from tests.servers import MetricsTarget, PrometheusServer
from tests.workflows.recording import activity_events

CART = f"/apis/apps/v1/namespaces/{NS}/deployments/cartservice"


def rollout_state(executor: KubernetesExecutor) -> tuple[int, str, int]:
    """(generation, revision, ReplicaSets) of cartservice: each restart bumps all three."""
    dep = executor.apps.read_namespaced_deployment("cartservice", NS)
    owned = [
        rs
        for rs in executor.apps.list_namespaced_replica_set(NS).items
        if any(o.name == "cartservice" for o in rs.metadata.owner_references or [])
    ]
    revision = (dep.metadata.annotations or {}).get("deployment.kubernetes.io/revision", "")
    return dep.metadata.generation, revision, len(owned)


def holds_the_restart(method: str, path: str) -> bool:
    return method == "PATCH" and urlsplit(path).path == CART and "dryRun" not in path


async def test_worker_killed_mid_step_restarts_once_and_the_incident_completes(
    dev_server: tuple[DevServer, Client],
    lab_api: LabApiServer,
    executor: KubernetesExecutor,
    rules: RulesSnapshot,
    prometheus: PrometheusServer,
    healthy_cart: MetricsTarget,
    tmp_path: Path,
) -> None:
    server, client = dev_server
    queue = "aiops-crash"
    generation, revision, replicasets = rollout_state(executor)
    with KubeApiGate(lab_api.url, hold=holds_the_restart) as gate:
        env = worker_env(
            temporal=server.address,
            task_queue=queue,
            state_dir=tmp_path / "state",
            prometheus=prometheus.url,
            kubeconfig=write_kubeconfig(tmp_path / "kubeconfig", gate.url),
        )
        first = WorkerProcess.fixed_rca(env, tmp_path / "worker-1.log").start()
        second = WorkerProcess.fixed_rca(env, tmp_path / "worker-2.log")
        try:
            handle = await start(client, queue, rules)
            request = await pending(handle, timeout_s=120)  # the worker starts meanwhile
            await approve(handle, "alice", request)
            reached = await asyncio.to_thread(gate.held.wait, 60)
            assert reached, f"the restart never reached the cluster:\n{first.output()}"
            assert restarted_by(executor) == key_of(handle), "the change is on the cluster..."
            first.kill()  # ...and the worker dies before it can report the step done
            gate.release()
            second.start()
            # The step's heartbeat timeout (60 s) tells Temporal the first attempt is lost.
            report = await asyncio.wait_for(handle.result(), 150)
        finally:
            first.stop()
            second.stop()
        patches = gate.count("PATCH", CART)

    assert report.status is IncidentStatus.RESOLVED, report.audit
    assert report.verified is True
    assert patches == 1, "the retried step must not restart the Deployment again"
    assert rollout_state(executor) == (generation + 1, str(int(revision) + 1), replicasets + 1)
    assert restarted_by(executor) == key_of(handle)
    [step] = report.steps
    assert step.ok
    assert "already restarted for incident" in step.message, step.message

    history = await handle.fetch_history()
    [retried] = [
        e.activity_task_started_event_attributes
        for e in activity_events(history, "execute_step")
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert retried.attempt == 2, "the first attempt died with its worker"
    assert retried.identity == second.identity
    lost = retried.last_failure.timeout_failure_info.timeout_type
    assert lost == TimeoutType.TIMEOUT_TYPE_HEARTBEAT, retried.last_failure
    assert first.identity in worked_on(history), "the first worker did the first half"
