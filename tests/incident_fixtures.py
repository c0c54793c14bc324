"""Shared incident-test fixtures: the lab Kubernetes API, the executor on it, the shipped
playbooks with short verification windows, and helpers to start and approve incidents."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from aiops_lab.cluster.cluster import Cluster
from aiops_lab.kubeapi.server import LabApiServer, start_lab_api, write_kubeconfig
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from aiops.activities.contracts import RulesSnapshot, action_key
from aiops.activities.incident import IncidentActivities
from aiops.activities.intake import IntakeActivities
from aiops.activities.kill_switch import KillSwitchActivities
from aiops.activities.notify import NotifyActivities
from aiops.config import PrometheusSettings
from aiops.domain import (
    Anomaly,
    ApprovalRequest,
    DecideResult,
    Direction,
    Evidence,
    FaultType,
    Hypothesis,
    Incident,
    IncidentReport,
    RcaReport,
)
from aiops.incidents.client import IncidentClient
from aiops.incidents.intake import AnomalyIntake
from aiops.incidents.rules import RulesSource
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.prometheus import Prometheus
from aiops.playbooks.loader import PlaybookSet, load_playbooks
from aiops.policy.loader import parse_policy
from aiops.policy.models import Policy
from aiops.worker import build_worker
from tests.keys import public, signed
from tests.servers import MetricsTarget, PrometheusServer, scraped, wait_until
from workflows import IncidentWorkflow
from workflows.incident import IncidentInput

REPO = Path(__file__).resolve().parents[1]
NS = "boutique"


APPROVERS = ("alice", "bob")


def policy_yaml(
    *,
    approvals: int = 1,
    timeout: str = "10m",
    on_timeout: str = "reject",
    names: Mapping[str, Mapping[str, list[str]]] | None = None,
    doors: Mapping[str, str] | None = None,
) -> str:
    """alice and bob approve, each with their own CLI key (tests/keys.py). `names` adds the
    names people go by on other channels (a person not among the approvers is known to the
    policy but may not approve); `doors` lists trusted front doors (name -> channel), each with
    the test key of its name."""
    people: dict[str, dict[str, list[str]]] = {p: {"cli": [public(p)]} for p in APPROVERS}
    for person, channels in (names or {}).items():
        people.setdefault(person, {}).update(channels)
    identities = "\n".join(f"    {p}: {json.dumps(c)}" for p, c in people.items())
    front_doors = "\n".join(
        f"    - {{name: {n}, channel: {ch}, key: '{public(n)}'}}" for n, ch in (doors or {}).items()
    )
    return f"""
allow:
  - name: boutique
    namespaces: [{NS}]
    actions: [k8s.rollout_restart, k8s.scale, k8s.rollout_undo, k8s.delete_pod]
budgets: {{per_namespace_per_hour: 50, per_cluster_per_hour: 100, cooldown_per_target: 1s}}
approvals:
  timeout: {timeout}
  on_timeout: {on_timeout}
  default_approvers: [alice, bob]
  rules:
    - {{name: everything-needs-a-human, risk_at_least: low, approvals: {approvals},
       approvers: [alice, bob]}}
  identities:
{identities}
  front_doors:{" []" if not doors else ""}
{front_doors}
"""


class FixedInvestigator:
    """The report a finished investigation would give: cartservice leaks memory (or has
    another `fault`)."""

    def __init__(
        self,
        fault: FaultType = FaultType.MEMORY,
        target: str = "cartservice",
        kind: Literal["Deployment", "Node"] = "Deployment",
    ) -> None:
        self.fault = fault
        self.target = target
        self.kind = kind

    async def investigate(self, incident: Incident) -> RcaReport:
        now = datetime.now(UTC)
        return RcaReport(
            incident_id=incident.id,
            summary=f"{self.target} leaks memory"
            if self.fault is FaultType.MEMORY
            else f"{self.target}: {self.fault.value}",
            started_at=now,
            finished_at=now,
            hypotheses=[
                Hypothesis(
                    target=self.target,
                    target_kind=self.kind,
                    namespace=NS,
                    fault=self.fault,
                    confidence=0.9,
                    evidence=[
                        Evidence(
                            kind="metric",
                            summary="working set near the limit",
                            source="container_memory_working_set_bytes",
                        )
                    ],
                )
            ],
        )


def make_incident() -> Incident:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    return Incident(
        id=f"incident-{uuid.uuid4().hex[:12]}",
        fingerprint="f" * 16,
        namespace=NS,
        service="cartservice",
        opened_at=now,
        anomalies=[
            Anomaly(
                signal="memory_vs_limit",
                series={"workload": "cartservice"},
                query="container_memory_working_set_bytes",
                start=now,
                score=0.9,
                direction=Direction.UP,
            )
        ],
    )


def workload_anomaly(workload: str, namespace: str = NS, score: float = 0.9) -> Anomaly:
    """A fresh error-ratio anomaly of a workload, as the detector reports one."""
    return Anomaly(
        signal="error_ratio",
        series={"workload": workload, "namespace": namespace},
        query=f'sum(rate(istio_requests_total{{destination_workload="{workload}"}}[1m]))',
        start=datetime.now(UTC),
        score=score,
        direction=Direction.UP,
    )


@pytest.fixture(scope="module")
def lab_api() -> Iterator[LabApiServer]:
    with start_lab_api(Cluster.boutique()) as server:
        yield server


@pytest.fixture(scope="module")
def executor(lab_api: LabApiServer, tmp_path_factory: pytest.TempPathFactory) -> KubernetesExecutor:
    path = write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", lab_api.url)
    return KubernetesExecutor.from_kubeconfig(str(path))


@pytest.fixture
def healthy_cart(prometheus: PrometheusServer, metrics_target: MetricsTarget) -> MetricsTarget:
    """What kube-state-metrics would export for a healthy cartservice."""
    labels = f'namespace="{NS}",deployment="cartservice"'
    metrics_target.values[f"kube_deployment_status_replicas_available{{{labels}}}"] = 2
    metrics_target.values[f"kube_deployment_spec_replicas{{{labels}}}"] = 2
    metrics_target.values[
        f"kube_pod_container_status_restarts_total"
        f'{{namespace="{NS}",pod="cartservice-5d9-x2",container="server"}}'
    ] = 0
    wait_until(lambda: scraped(prometheus.url, "kube_deployment_spec_replicas"), 15, "scrape")
    return metrics_target


@pytest.fixture
def rules(tmp_path: Path) -> RulesSnapshot:
    """The shipped playbooks, with verification windows short enough for a test."""
    books = tmp_path / "playbooks"
    books.mkdir()
    for source in (REPO / "playbooks").glob("*.yaml"):
        text = re.sub(r"hold_for: \w+", "hold_for: 2s", source.read_text())
        (books / source.name).write_text(re.sub(r"(\n  timeout:) \w+", r"\1 15s", text))
    return RulesSnapshot(policy=parse_policy(policy_yaml()), playbooks=load_playbooks(books))


@pytest.fixture
def rules_files(tmp_path: Path, rules: RulesSnapshot) -> RulesSource:
    """`rules` as files (the policy of `policy_yaml()`), read as the daemon reads them."""
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "default.yaml").write_text(policy_yaml())
    return RulesSource(policies, tmp_path / "playbooks")


def with_verification_timeout(
    rules: RulesSnapshot, playbook_id: str, timeout_s: float
) -> RulesSnapshot:
    """`rules` with one playbook's verification giving up after `timeout_s`: for tests where
    verification is meant to fail, so they need not wait out the usual window."""
    book = rules.playbooks.playbooks[playbook_id]
    assert book.verification is not None, f"{playbook_id} has no verification"
    quick = book.model_copy(
        update={"verification": book.verification.model_copy(update={"timeout": timeout_s})}
    )
    return RulesSnapshot(
        policy=rules.policy,
        playbooks=PlaybookSet(playbooks={**rules.playbooks.playbooks, playbook_id: quick}),
    )


async def start(
    client: Client,
    task_queue: str,
    rules: RulesSnapshot,
    index: bool = True,
    incident_id: str | None = None,
    opened_at: datetime | None = None,
    settle_s: float = 30.0,
    **policy: object,
) -> WorkflowHandle[IncidentWorkflow, IncidentReport]:
    """Start an incident; `incident_id` reuses an id, as the next incident of a namespace does.
    The incident opened long ago unless `opened_at` says otherwise (so it never waits to settle).
    """
    if policy:
        rules = RulesSnapshot(
            policy=parse_policy(policy_yaml(**policy)),  # type: ignore[arg-type]
            playbooks=rules.playbooks,
        )
    incident = make_incident()
    if incident_id is not None:
        incident = incident.model_copy(update={"id": incident_id})
    if opened_at is not None:
        incident = incident.model_copy(update={"opened_at": opened_at})
    return await client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(
            incident=incident,
            rules=rules,
            index=index,
            settle_s=settle_s,
        ),
        id=incident.id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


async def pending(
    handle: WorkflowHandle[IncidentWorkflow, IncidentReport], timeout_s: float = 30
) -> ApprovalRequest:
    for _ in range(int(timeout_s * 10)):
        request = await handle.query(IncidentWorkflow.pending_approval)
        if request is not None:
            return request
        await asyncio.sleep(0.1)
    raise AssertionError("the workflow never asked for approval")


def key_of(handle: WorkflowHandle[IncidentWorkflow, IncidentReport]) -> str:
    """The key the executor marks this incident's actions with (workflow id and run id)."""
    assert handle.result_run_id is not None
    return action_key(handle.id, handle.result_run_id)


def restarted_by(executor: KubernetesExecutor) -> str | None:
    dep = executor.apps.read_namespaced_deployment("cartservice", NS)
    annotations = dep.spec.template.metadata.annotations or {}
    return annotations.get("aiops.dev/restarted-by-incident")


async def approve(
    handle: WorkflowHandle[IncidentWorkflow, IncidentReport], who: str, request: ApprovalRequest
) -> DecideResult:
    """Approve as `who`, signed with their own key (tests/keys.py), as `aiops approve` does."""
    decision = await signed(handle, who, request.plan_hash)
    result: DecideResult = await handle.execute_update(IncidentWorkflow.decide, decision)
    return result


async def reject(
    handle: WorkflowHandle[IncidentWorkflow, IncidentReport],
    who: str,
    request: ApprovalRequest,
    reason: str = "not now",
) -> DecideResult:
    decision = await signed(handle, who, request.plan_hash, approve=False, reason=reason)
    result: DecideResult = await handle.execute_update(IncidentWorkflow.decide, decision)
    return result


class KillSwitch:
    """The policy file's kill switch as the `check_kill_switch` activity reads it, in memory."""

    def __init__(self) -> None:
        self.on = False

    def policy(self) -> Policy:
        return Policy(kill_switch=self.on)


@pytest.fixture
def kill_switch() -> KillSwitch:
    return KillSwitch()


@pytest.fixture
def fault() -> FaultType:
    """The root cause the `acts` worker's investigations find (parametrize `fault` to change)."""
    return FaultType.MEMORY


@pytest.fixture
async def acts(
    temporal_client: Client,
    task_queue: str,
    executor: KubernetesExecutor,
    prometheus: PrometheusServer,
    fault: FaultType,
    kill_switch: KillSwitch,
    rules_files: RulesSource,
) -> AsyncIterator[IncidentActivities]:
    """A worker on `task_queue` whose incidents investigate to FixedInvestigator's report and
    act on the lab Kubernetes API, with verification through the test Prometheus."""
    activities = IncidentActivities(
        investigator=FixedInvestigator(fault),
        executor=executor,
        prometheus=Prometheus(PrometheusSettings(url=prometheus.url)),
        verify_poll_s=0.5,
    )
    silent = NotifyActivities(None)  # no Slack here: notifications report "not delivered"
    switch = KillSwitchActivities(kill_switch.policy)
    # Follow-up incidents open through the intake, with the rules as their files say.
    intake = IntakeActivities(
        AnomalyIntake(IncidentClient(temporal_client, task_queue), rules_files)
    )
    acts = [*activities.all(), *silent.all(), *switch.all(), *intake.all()]
    async with build_worker(temporal_client, task_queue, acts):
        yield activities
