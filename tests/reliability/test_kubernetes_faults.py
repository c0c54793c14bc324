"""The Kubernetes API misbehaving during the dry run and during the step: 409 storms, 429
throttling, 5xx errors (also after the change was made) and a black-holed server. Retries are
bounded, nothing is done twice, and every incident ends with the reason, none hangs.

The lab Kubernetes API sits behind the fault proxy; the worker runs the shipped activities on the
real Temporal dev server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiops_lab.kubeapi.server import LabApiServer, write_kubeconfig
from temporalio.client import Client

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.incident import IncidentActivities
from aiops.activities.kill_switch import KillSwitchActivities
from aiops.activities.notify import NotifyActivities
from aiops.config import PrometheusSettings
from aiops.domain import IncidentReport, IncidentStatus
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.prometheus import Prometheus
from aiops.worker import build_worker
from tests.faultproxy import Answer, AnswerAfter, BlackHole, Fault, FaultProxy, on
from tests.incident_fixtures import NS, KillSwitch
from tests.reliability.scenarios import incident, only
from tests.reliability.worker_main import LabelledInvestigator
from tests.servers import PrometheusServer
from workflows import IncidentWorkflow
from workflows.incident import IncidentInput

DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
REQUEST_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Case:
    target: str
    fault: Fault
    dry_run: bool  # the fault hits the dry run (True) or the step itself
    times: int | None  # None: for as long as the test runs
    status: IncidentStatus  # how the incident ends
    why: str  # what its audit trail or step says
    reached: int  # PATCHes of the step that reached the cluster
    scale: bool = False


CASES = {
    "409 storm in the dry run": Case(
        "cartservice", Answer(409), True, None, IncidentStatus.ESCALATED, "kept changing", 0
    ),
    "409 storm in the step": Case(
        "adservice", Answer(409), False, None, IncidentStatus.FAILED, "kept changing", 0
    ),
    "429 twice in the dry run": Case(
        "emailservice", Answer(429), True, 2, IncidentStatus.RESOLVED, "rollout restart", 1
    ),
    "429 twice in the step": Case(
        "frontend", Answer(429), False, 2, IncidentStatus.RESOLVED, "scale", 1, scale=True
    ),
    "503 in the dry run": Case(
        "currencyservice", Answer(503), True, None, IncidentStatus.ESCALATED, "error 503", 0
    ),
    "500 after the change": Case(
        "paymentservice",
        AnswerAfter(500),
        False,
        1,
        IncidentStatus.RESOLVED,
        "already restarted",
        1,
    ),
    "black hole in the dry run": Case(
        "shippingservice", BlackHole(), True, None, IncidentStatus.ESCALATED, "cannot reach", 0
    ),
    "black hole in the step": Case(
        "recommendationservice",
        BlackHole(),
        False,
        None,
        IncidentStatus.FAILED,
        "cannot reach",
        0,
    ),
}


def path_of(case: Case) -> str:
    return f"{DEPLOYMENTS}/{case.target}" + ("/scale" if case.scale else "")


@pytest.fixture
async def faulty_worker(
    temporal_client: Client,
    task_queue: str,
    lab_api: LabApiServer,
    prometheus: PrometheusServer,
    kill_switch: KillSwitch,
    tmp_path: Path,
) -> AsyncIterator[FaultProxy]:
    with FaultProxy(lab_api.url) as proxy:
        executor = KubernetesExecutor.from_kubeconfig(
            str(write_kubeconfig(tmp_path / "kubeconfig", proxy.url)),
            request_timeout_s=REQUEST_TIMEOUT_S,
        )
        activities = IncidentActivities(
            investigator=LabelledInvestigator(),
            executor=executor,
            prometheus=Prometheus(PrometheusSettings(url=prometheus.url)),
            verify_poll_s=0.5,
        )
        switch = KillSwitchActivities(kill_switch.policy)  # off: read before every step
        acts = [*activities.all(), *NotifyActivities(None).all(), *switch.all()]
        async with build_worker(temporal_client, task_queue, acts):
            yield proxy


async def test_api_faults_end_every_incident_with_its_reason_and_nothing_twice(
    temporal_client: Client,
    task_queue: str,
    faulty_worker: FaultProxy,
    rules: RulesSnapshot,
    lab_api: LabApiServer,
) -> None:
    proxy = faulty_worker
    for case in CASES.values():
        proxy.add(on("PATCH", path_of(case), dry_run=case.dry_run), case.fault, case.times)
    generation = {c.target: generation_of(lab_api, c.target) for c in CASES.values()}
    started = time.monotonic()
    handles = {}
    for name, case in CASES.items():
        inc = incident(case.target, "traffic_surge" if case.scale else "memory")
        playbook = "scale-deployment" if case.scale else "restart-deployment"
        handles[name] = await temporal_client.start_workflow(
            IncidentWorkflow.run,
            IncidentInput(incident=inc, rules=only(rules, playbook, preconditions=False)),
            id=inc.id,
            task_queue=task_queue,
        )
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles.values())), 150)
    took = time.monotonic() - started
    reports: dict[str, IncidentReport] = dict(zip(handles, results, strict=True))

    for name, case in CASES.items():
        report = reports[name]
        said = [e.what for e in report.audit] + [s.message for s in report.steps]
        assert report.status is case.status, (name, said)
        assert any(case.why in line for line in said), (name, said)
        assert proxy.count("PATCH", path_of(case)) == case.reached, name
        changed = generation_of(lab_api, case.target) - generation[case.target]
        assert changed == case.reached, f"{name}: {changed} change(s) on the cluster"
    # Bounded: 5 attempts of the activity, each with the executor's 5 tries on a conflict.
    assert count_sent(proxy, "PATCH", path_of(CASES["409 storm in the step"])) == 25
    assert count_sent(proxy, "PATCH", path_of(CASES["black hole in the step"])) == 5
    assert took < 120, f"the incidents took {took:.0f} s"


def generation_of(lab: LabApiServer, name: str) -> int:
    return int(lab.cluster.get("deployments", NS, name)["metadata"]["generation"])


def count_sent(proxy: FaultProxy, method: str, path: str) -> int:
    """Requests sent (answered or not) of `method` on `path`, dry runs left out."""
    return sum(
        1
        for r in proxy.requests
        if r.method == method and r.path.split("?")[0] == path and "dryRun" not in r.path
    )
