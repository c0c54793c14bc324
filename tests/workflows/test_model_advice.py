"""#14 item 2 in the workflow: the model put adservice (a memory leak: a low-risk restart the
policy runs without a human) above cartservice, which the evidence ranked first (a bad rollout:
a rollback that needs an approval). The incident asks for that approval before anything runs."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.incident import IncidentActivities
from aiops.domain import (
    Evidence,
    FaultType,
    Hypothesis,
    Incident,
    IncidentStatus,
    RcaReport,
)
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.policy.loader import parse_policy
from tests.incident_fixtures import NS, pending, reject, start
from tests.keys import public
from tests.servers import MetricsTarget, PrometheusServer, scraped, wait_until
from tests.workflows.recording import replay_and_record

POLICY = f"""
allow:
  - {{name: boutique, namespaces: [{NS}], actions: [k8s.rollout_restart, k8s.rollout_undo]}}
approvals:
  rules:
    - {{name: medium-needs-one, risk_at_least: medium, approvals: 1, approvers: [alice, bob]}}
  identities: {{alice: {{cli: ['{public("alice")}']}}, bob: {{cli: ['{public("bob")}']}}}}
"""


def hypothesis(target: str, fault: FaultType, confidence: float) -> Hypothesis:
    return Hypothesis(
        target=target,
        namespace=NS,
        fault=fault,
        confidence=confidence,
        evidence=[Evidence(kind="metric", summary=f"{target}: {fault.value}", source="test")],
    )


class AdvisedInvestigator:
    """The report as the model path leaves it after re-ranking (aiops/agent/advice.py)."""

    async def investigate(self, incident: Incident) -> RcaReport:
        now = datetime.now(UTC)
        return RcaReport(
            incident_id=incident.id,
            hypotheses=[
                hypothesis("adservice", FaultType.MEMORY, 0.7),
                hypothesis("cartservice", FaultType.BAD_ROLLOUT, 0.9),
            ],
            evidence_ranking=["cartservice", "adservice"],
            summary="adservice leaks memory (the model's view)",
            generated_by="llm",
            started_at=now,
            finished_at=now,
        )


async def test_the_models_restart_waits_for_the_approval_the_rollback_needed(
    temporal_client: Client,
    task_queue: str,
    acts: IncidentActivities,
    rules: RulesSnapshot,
    executor: KubernetesExecutor,
    prometheus: PrometheusServer,
    metrics_target: MetricsTarget,
) -> None:
    labels = f'namespace="{NS}",deployment="adservice"'
    series = f"kube_deployment_status_replicas_available{{{labels}}}"
    metrics_target.values[series] = 1
    wait_until(lambda: scraped(prometheus.url, series), 15, f"a scrape of {series}")
    acts.investigator = AdvisedInvestigator()
    advised_rules = RulesSnapshot(
        policy=parse_policy(POLICY, "advice.yaml"), playbooks=rules.playbooks
    )
    generation = executor.apps.read_namespaced_deployment("adservice", NS).metadata.generation

    handle = await start(temporal_client, task_queue, advised_rules)
    request = await pending(handle)
    assert (request.plan.playbook_id, request.plan.target) == ("restart-deployment", "adservice")
    assert request.decision.requires_approval and request.decision.approvers == ["alice", "bob"]
    assert any(
        "re-ranking chose restart-deployment on adservice" in r for r in request.decision.reasons
    )
    await reject(handle, "bob", request, reason="not this")
    report = await handle.result()
    assert report.status is IncidentStatus.REJECTED and report.steps == []
    after = executor.apps.read_namespaced_deployment("adservice", NS).metadata.generation
    assert after == generation, "nothing ran"
    await replay_and_record(handle, "incident-advice-held-to-evidence")
