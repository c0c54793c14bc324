"""A worker process SIGKILLed in the middle of a remediation step, for every action kind and in
the middle of a compensation: each change reached the cluster, but the worker died before it
heard back. Temporal retries each step on the restarted worker once its heartbeat timeout
expires, the step's idempotency makes the retry a no-op, and every incident completes with each
change made exactly once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiops_lab.kubeapi.server import LabApiServer, write_kubeconfig
from temporalio.api.enums.v1 import TimeoutType
from temporalio.client import Client, WorkflowHandle

from aiops.activities.contracts import RulesSnapshot
from aiops.domain import IncidentReport, IncidentStatus
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.playbooks.models import VerificationSpec
from tests.faultproxy import FaultProxy, Hold, Match, Rule, on
from tests.incident_fixtures import NS
from tests.reliability.processes import (
    DevServer,
    WorkerProcess,
    wait_for_pollers,
    worked_on,
    worker_env,
)
from tests.reliability.scenarios import HOLDS, NEVER, incident, only
from tests.servers import MetricsTarget, PrometheusServer, scraped, wait_until
from tests.workflows.recording import activity_events
from workflows import IncidentWorkflow
from workflows.incident import IncidentInput

DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
Handle = WorkflowHandle[IncidentWorkflow, IncidentReport]


async def open_incident(client: Client, queue: str, rules: RulesSnapshot, case: Case) -> Handle:
    inc = incident(case.target, case.fault, node=case.node)
    return await client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(incident=inc, rules=only(rules, case.playbook, case.verification)),
        id=inc.id,
        task_queue=queue,
    )


async def held(rule: Rule, what: str, worker: WorkerProcess, timeout_s: float = 90) -> None:
    """Until the proxy holds `rule`'s request: the change is on the cluster, unanswered."""
    deadline = time.monotonic() + timeout_s
    while rule.holding == 0:
        assert worker.alive, f"the worker died:\n{worker.output()}"
        assert time.monotonic() < deadline, f"{what} never reached the cluster:\n{worker.output()}"
        await asyncio.sleep(0.1)


def pods_on(lab: LabApiServer, node: str) -> set[str]:
    items, _ = lab.cluster.list("pods", None, field_selector=f"spec.nodeName={node}")
    return {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in items
        if not p["metadata"].get("deletionTimestamp")
    }


def deletes_a_pod(method: str, path: str) -> bool:
    return method == "DELETE" and f"/api/v1/namespaces/{NS}/pods/" in path and "dryRun" not in path


def evicts_a_pod(method: str, path: str) -> bool:
    return method == "POST" and urlsplit(path).path.endswith("/eviction") and "dryRun" not in path


@dataclass(frozen=True)
class Case:
    """One incident: its root cause, the playbook it runs, and the request held mid-step."""

    target: str
    fault: str
    playbook: str
    held: Match
    verification: VerificationSpec = HOLDS
    node: bool = False
    after: int = 0  # requests `held` lets pass before it holds one


CASES = {
    # First: its hold comes after a step and a failed verification, later than the others'.
    "compensation": Case(
        "emailservice",
        "traffic_surge",
        "scale-deployment",
        on("PATCH", f"{DEPLOYMENTS}/emailservice/scale", dry_run=False),
        NEVER,
        after=1,  # the scale step passes; the compensation's scale back is held
    ),
    "restart": Case(
        "cartservice",
        "memory",
        "restart-deployment",
        on("PATCH", f"{DEPLOYMENTS}/cartservice", dry_run=False),
    ),
    "undo": Case(
        "checkoutservice",
        "bad_rollout",
        "rollback-deployment",
        on("PATCH", f"{DEPLOYMENTS}/checkoutservice", dry_run=False),
    ),
    "scale": Case(
        "frontend",
        "traffic_surge",
        "scale-deployment",
        on("PATCH", f"{DEPLOYMENTS}/frontend/scale", dry_run=False),
    ),
    "delete_pod": Case("productcatalogservice", "crashloop", "delete-pod", deletes_a_pod),
    "cordon": Case(
        "node-a",
        "node",
        "cordon-and-drain-node",
        on("PATCH", "/api/v1/nodes/node-a", dry_run=False),
        node=True,
    ),
    "drain": Case("node-b", "node", "cordon-and-drain-node", evicts_a_pod, node=True),
}


async def test_a_worker_killed_mid_step_for_every_action_does_each_once(
    dev_server: tuple[DevServer, Client],
    lab_api: LabApiServer,
    executor: KubernetesExecutor,
    rules: RulesSnapshot,
    prometheus: PrometheusServer,
    metrics_target: MetricsTarget,
    tmp_path: Path,
) -> None:
    server, client = dev_server
    queue = "aiops-crash"
    # What the playbooks' Prometheus preconditions ask about the workloads they act on.
    for name in ("cartservice", "productcatalogservice"):
        labels = f'namespace="{NS}",deployment="{name}"'
        series = f"kube_deployment_status_replicas_available{{{labels}}}"
        metrics_target.values[series] = 2
        wait_until(lambda s=series: scraped(prometheus.url, s), 15, f"a scrape of {series}")
    lab_api.cluster.rollout(NS, "checkoutservice", "checkoutservice:bad", {})  # to be undone
    generation = {d: generation_of(executor, d) for d in ("cartservice", "checkoutservice")}

    with FaultProxy(lab_api.url) as proxy:
        holds = {
            what: proxy.add(c.held, Hold(), times=1, after=c.after) for what, c in CASES.items()
        }
        env = worker_env(
            temporal=server.address,
            task_queue=queue,
            state_dir=tmp_path / "state",
            prometheus=prometheus.url,
            kubeconfig=write_kubeconfig(tmp_path / "kubeconfig", proxy.url),
            # The held calls must outlast the test's setup: the activity cuts this to half its
            # 60 s heartbeat timeout, which is still longer than holding every step takes.
            kubernetes__request_timeout_s="120",
        )
        first = WorkerProcess.labelled(env, tmp_path / "worker-1.log").start()
        second = WorkerProcess.labelled(env, tmp_path / "worker-2.log")
        try:
            await wait_for_pollers(client, queue, {first.identity}, 120)
            handles: dict[str, Handle] = {}
            for what, case in CASES.items():
                handles[what] = await open_incident(client, queue, rules, case)
                if what == "compensation":
                    await held(holds[what], what, first)
            for what, rule in holds.items():
                await held(rule, what, first)
            first.kill()  # every step's change is on the cluster; nobody will hear back
            proxy.release()
            second.start()
            # Each lost step is retried once its heartbeat timeout (60 s) expires.
            results = asyncio.gather(*(h.result() for h in handles.values()))
            reports = dict(zip(handles, await asyncio.wait_for(results, 240), strict=True))
        finally:
            first.stop()
            second.stop()

    for what, report in reports.items():
        expected = IncidentStatus.ROLLED_BACK if what == "compensation" else IncidentStatus.RESOLVED
        assert report.status is expected, (what, report.audit)
        assert report.steps and all(s.ok for s in report.steps), (what, report.steps)
    # Exactly once each: one PATCH per Deployment and node, one DELETE, one eviction per pod.
    assert proxy.count("PATCH", f"{DEPLOYMENTS}/cartservice") == 1
    assert proxy.count("PATCH", f"{DEPLOYMENTS}/checkoutservice") == 1
    assert proxy.count("PATCH", f"{DEPLOYMENTS}/frontend/scale") == 1
    assert proxy.count("PATCH", f"{DEPLOYMENTS}/emailservice/scale") == 2  # step, compensation
    assert proxy.count("PATCH", "/api/v1/nodes/node-a") == 1
    assert proxy.count("PATCH", "/api/v1/nodes/node-b") == 1
    assert len(proxy.reached("DELETE")) == 1
    evicted = [pod_of(r.path) for r in proxy.reached("POST") if r.path.endswith("/eviction")]
    assert len(evicted) == len(set(evicted)), "a pod was evicted twice"
    assert evicted, "the drain evicted nothing"
    left = pods_on(lab_api, "node-b")
    assert all(p.startswith("kube-system/") for p in left), f"still on node-b: {left}"
    # The retried steps found their change done.
    assert "already restarted" in reports["restart"].steps[0].message
    assert "already rolled back" in reports["undo"].steps[0].message
    assert "already at 3 replicas" in reports["scale"].steps[0].message
    assert "already" in reports["delete_pod"].steps[0].message  # gone, or terminating
    assert "already cordoned" in reports["cordon"].steps[0].message
    assert "already at 1 replicas" in reports["compensation"].steps[1].message
    for name, before in generation.items():
        assert generation_of(executor, name) == before + 1, name
    assert executor.apps.read_namespaced_deployment_scale("emailservice", NS).spec.replicas == 1

    for what, handle in handles.items():
        history = await handle.fetch_history()
        retried = [
            e.activity_task_started_event_attributes
            for e in activity_events(history, "execute_step")
            if e.HasField("activity_task_started_event_attributes")
            and e.activity_task_started_event_attributes.attempt == 2
        ]
        assert retried, f"{what}: no step was retried"
        assert retried[0].identity == second.identity, what
        lost = retried[0].last_failure.timeout_failure_info.timeout_type
        assert lost == TimeoutType.TIMEOUT_TYPE_HEARTBEAT, (what, retried[0].last_failure)
        assert first.identity in worked_on(history), f"{what}: the first worker did the first half"


def generation_of(executor: KubernetesExecutor, name: str) -> int:
    return int(executor.apps.read_namespaced_deployment(name, NS).metadata.generation)


def pod_of(eviction_path: str) -> str:
    """namespace/name from /api/v1/namespaces/NS/pods/NAME/eviction."""
    parts = urlsplit(eviction_path).path.split("/")
    return f"{parts[4]}/{parts[6]}"
