"""The kill switch flipped in the policy file while a worker process runs the detection loop
(`--start-detection`) through a fault: the incident the detector opened is already waiting for
approval, a person approves, and nothing executes; the audit trail says why. The next incident
opens with the edited policy and is denied by it. Nothing is restarted."""

from __future__ import annotations

import time
from pathlib import Path

from aiops_lab.kubeapi.server import LabApiServer, write_kubeconfig
from temporalio.client import Client

from aiops.domain import IncidentStatus
from aiops.incidents import IncidentClient
from aiops.incidents.errors import IncidentError
from aiops.incidents.intake import DETECTION_LOOP_ID
from aiops.integrations.kubernetes import KubernetesExecutor
from tests.detect.test_pass_prometheus import RATE_WINDOW_S, IstioTarget, istio_prometheus
from tests.incident_fixtures import NS, policy_yaml, restarted_by
from tests.keys import signer
from tests.reliability.processes import DevServer, WorkerProcess, worker_env
from tests.reliability.test_prometheus_outage import eventually
from tests.test_webhook import incident_id_of


class ShopTarget(IstioTarget):
    """The mesh's request counters, and what kube-state-metrics says of cartservice (two
    replicas available: the restart playbook's precondition)."""

    def exposition(self, now: float) -> str:
        labels = f'namespace="{NS}",deployment="cartservice"'
        return super().exposition(now) + (
            f"kube_deployment_status_replicas_available{{{labels}}} 2\n"
            f"kube_deployment_spec_replicas{{{labels}}} 2\n"
        )


async def test_a_kill_switch_flip_stops_a_detector_opened_incident_waiting_for_approval(
    dev_server: tuple[DevServer, Client],
    lab_api: LabApiServer,
    executor: KubernetesExecutor,
    tmp_path: Path,
) -> None:
    server, client = dev_server
    incidents = IncidentClient(client, "aiops-kill-switch")
    policies = tmp_path / "policies"
    policies.mkdir()
    policy = policies / "default.yaml"
    policy.write_text(policy_yaml())  # every plan needs alice or bob
    restarted_before = restarted_by(executor)
    target = ShopTarget()
    try:
        with istio_prometheus(target, 400) as prom:
            env = worker_env(
                temporal=server.address,
                task_queue=incidents.task_queue,
                state_dir=tmp_path / "state",
                prometheus=prom.url,
                kubeconfig=write_kubeconfig(tmp_path / "kubeconfig", lab_api.url),
                POLICIES_DIR=str(policies),
                DETECTION__INTERVAL_S="1",
                DETECTION__PRIME_S="300",
                DETECTION__RATE_WINDOW=f"{RATE_WINDOW_S}s",
            )
            log = tmp_path / "worker.log"
            # The fault begins as the worker starts: the detector's first pass reports it.
            target.fault_at["checkout"] = time.time()
            with WorkerProcess.fixed_rca(env, log, "--start-detection") as worker:
                first = incidents.handle(incident_id_of("shop"))

                async def asked() -> bool:
                    try:
                        return (await incidents.show(first.id)).pending is not None
                    except IncidentError:
                        return False

                await eventually(asked, 90, f"an approval request:\n{worker.output()}")
                policy.write_text("kill_switch: true\n" + policy_yaml())  # the flip
                outcome = await incidents.decide(
                    first.id, signer("alice"), approve=True, reason="go ahead"
                )
                report = await first.result()

                target.fault_at["cart"] = time.time()  # a fault after the flip

                async def next_incident() -> bool:
                    found = await incidents.find(
                        query=f"WorkflowId = '{first.id}' AND ExecutionStatus = 'Completed'"
                    )
                    return len(found) >= 2

                await eventually(next_incident, 90, f"the next incident:\n{worker.output()}")
                after = await incidents.handle(first.id).result()
                assert worker.alive, worker.output()
                await client.get_workflow_handle(DETECTION_LOOP_ID).terminate("test done")
    finally:
        target.close()

    assert outcome.result.status is IncidentStatus.ESCALATED, outcome.message
    assert "before running it" in outcome.message
    assert report.status is IncidentStatus.ESCALATED
    assert report.steps == []
    [why] = [e.what for e in report.audit if "not run" in e.what]
    # The plan's first step on the culprit (which playbook fits follows the metric profiles).
    assert why.startswith("step 1 k8s.") and "/boutique/cartservice" in why, why
    assert "the kill switch is on in the policy now" in why
    assert restarted_by(executor) == restarted_before, "nothing was restarted"
    # The edit reached the next incident through its rules snapshot, with the new version.
    assert after.policy is not None and not after.policy.allowed
    assert any("the kill switch is on (in the policy)" in r for r in after.policy.reasons)
    assert after.policy.policy_version != report.policy.policy_version  # type: ignore[union-attr]
    assert after.steps == []
