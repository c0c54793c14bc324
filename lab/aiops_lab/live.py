"""The lab and the daemon running together: what `aiops demo` and `aiops lab eval` drive.

`live_lab(...)` starts the lab in a child process (simulated shop and cluster, the lab Kubernetes
API, a real Prometheus with backfilled history) and the daemon as shipped in this process (the
Temporal dev server, the worker with every activity, the detection loop), with the settings
pointed at the lab's Prometheus and kubeconfig. Leaving the block stops both, on errors and on
Ctrl-C too.

`LiveLab` is the operator's side: play a scenario, read the shop's health, list and read the
incidents the daemon opens (through the incident client), approve a pending plan through the
workflow's real `decide` update, signed with the key of an approver the policy lists (the demo
and the evaluation make one ephemeral key per approver identity and put its public half into
their copy of the policy: nothing bypasses the gate), and put the lab back to a healthy state
between scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from aiops.config import Settings
from aiops.devstack import Daemon, embedded_daemon
from aiops.domain import (
    Anomaly,
    ApprovalRequest,
    AuditEntry,
    IncidentReport,
    IncidentStatus,
    RcaReport,
    RemediationPlan,
)
from aiops.incidents import DecisionSigner, IncidentClient, IncidentError
from aiops.incidents.errors import AlreadyApprovedError, NotAnApproverError
from aiops.incidents.intake import DETECTION_LOOP_ID
from aiops.incidents.reader import read_anomalies
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.policy.evaluate import ActionRecord
from aiops_lab.ports import BEHAVIOUR_ANNOTATION
from aiops_lab.runner import LabInfo
from aiops_lab.scenario import Scenario
from aiops_lab.sim.faults import parse_behaviour

NAMESPACE = "boutique"


def lab_settings(
    settings: Settings, lab: LabInfo, *, state_dir: Path, policy: Path, interval_s: float
) -> Settings:
    """The daemon's settings for the lab: its Prometheus and kubeconfig, the given policy, a
    detection pass every `interval_s` (the lab scrapes every second) and its own state dir."""
    return settings.model_copy(
        update={
            "state_dir": state_dir,
            "policies_dir": policy,
            "prometheus": settings.prometheus.model_copy(update={"url": lab.prometheus_url}),
            "kubernetes": settings.kubernetes.model_copy(
                update={"kubeconfig": Path(lab.kubeconfig), "context": None, "in_cluster": False}
            ),
            "detection": settings.detection.model_copy(update={"interval_s": interval_s}),
        }
    )


@dataclass(frozen=True)
class Approvers:
    """Who the demo or the evaluation approves as: an ephemeral key per approver identity of
    the policy, whose public half is in `policy` (a copy of the given policy with nothing else
    changed). Decisions are signed and checked exactly as a person's are."""

    policy: Path
    signers: dict[str, DecisionSigner]


def approvers(
    policy: Path, names: Sequence[str], out: Path, extra: Mapping[str, str] | None = None
) -> Approvers:
    """Keys for the identities `names` of `policy` (those it has), written with `extra`
    (identity -> a person's own public key, e.g. `operator` for `--interactive`) to `out`."""
    data = yaml.safe_load(policy.read_text()) or {}
    identities = data.setdefault("approvals", {}).setdefault("identities", {})
    signers: dict[str, DecisionSigner] = {}
    keys: dict[str, list[str]] = {name: [] for name in identities}
    for name in names:
        if name in identities:
            signers[name] = DecisionSigner(Ed25519PrivateKey.generate(), "cli")
            keys[name].append(signers[name].public_key)
    for name, key in (extra or {}).items():
        if name in identities:
            keys[name].append(key)
    for name, added in keys.items():
        person = identities[name] or {}
        person["cli"] = [*person.get("cli", []), *added]
        identities[name] = person
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return Approvers(out, signers)


@dataclass(frozen=True)
class Played:
    name: str
    played_at: float
    faults_at: float
    ends_at: float


@dataclass(frozen=True)
class Execution:
    """One run of an IncidentWorkflow (incident ids repeat: one per namespace at a time)."""

    id: str
    run_id: str
    started_at: float
    running: bool


@dataclass(frozen=True)
class IncidentState:
    """What a person sees of an incident at one moment (its queries, or its result)."""

    execution: Execution
    status: IncidentStatus | None
    entities: tuple[str, ...]
    rca: RcaReport | None
    plan: RemediationPlan | None
    pending: ApprovalRequest | None
    audit: list[AuditEntry]
    actions: list[ActionRecord]
    report: IncidentReport | None


class LiveLab:
    def __init__(self, lab: LabInfo, daemon: Daemon) -> None:
        self.lab = lab
        self.daemon = daemon
        self.http = httpx.AsyncClient(timeout=10.0)
        self.kube = KubernetesExecutor.from_kubeconfig(lab.kubeconfig)

    @property
    def client(self) -> Client:
        return self.daemon.client

    @property
    def incidents(self) -> IncidentClient:
        return IncidentClient(self.client, self.daemon.settings.temporal.task_queue)

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- the shop ----------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        response = await self.http.get(f"{self.lab.shop_url}/lab/status")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def play(self, scenario: Scenario) -> Played:
        from aiops_lab.eval.lab_detection import to_yaml

        response = await self.http.post(
            f"{self.lab.shop_url}/lab/scenario", content=to_yaml(scenario)
        )
        if response.status_code != 200:
            raise IncidentError(f"the lab refused scenario {scenario.name}: {response.text}")
        body = response.json()
        return Played(scenario.name, time.time(), float(body["faults_at"]), float(body["ends_at"]))

    async def clear_faults(self) -> None:
        (await self.http.post(f"{self.lab.shop_url}/lab/clear")).raise_for_status()

    # --- the cluster -------------------------------------------------------------------

    async def objects(self) -> dict[str, str]:
        """Deployments (replicas and pod template) and Nodes (schedulable or not) of the lab
        API, as target -> fingerprint, to tell which objects changed."""
        return await asyncio.to_thread(self._objects)

    def _deployments(self) -> list[dict[str, Any]]:
        listed = self.kube.apps.list_namespaced_deployment(NAMESPACE)
        items: list[dict[str, Any]] = self.kube._dict(listed).get("items", [])
        return items

    def _nodes(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kube._dict(self.kube.core.list_node()).get("items", [])
        return items

    def _objects(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for d in self._deployments():
            spec = d.get("spec", {})
            out[f"Deployment/{NAMESPACE}/{d['metadata']['name']}"] = json.dumps(
                {"replicas": spec.get("replicas"), "template": spec.get("template", {})},
                sort_keys=True,
            )
        for n in self._nodes():
            unschedulable = bool(n.get("spec", {}).get("unschedulable"))
            out[f"Node/{n['metadata']['name']}"] = json.dumps({"unschedulable": unschedulable})
        return out

    async def restore(self, replicas: Mapping[str, int], reason: str) -> list[str]:
        """Put the cluster back the way the lab started: roll back deployments running a faulty
        revision, scale deployments back, uncordon nodes. Returns what was done."""
        return await asyncio.to_thread(self._restore, dict(replicas), reason)

    def _restore(self, replicas: dict[str, int], reason: str) -> list[str]:
        done: list[str] = []
        for d in self._deployments():
            name = str(d["metadata"]["name"])
            spec = d.get("spec", {})
            ann = spec.get("template", {}).get("metadata", {}).get("annotations") or {}
            behaviour = parse_behaviour(ann.get(BEHAVIOUR_ANNOTATION))
            if behaviour.error_rate or behaviour.crash or behaviour.extra_latency_ms:
                r = self.kube.rollout_undo(NAMESPACE, name, incident_id=reason)
                done.append(f"rolled back {name}: {r.message}")
            want = replicas.get(name)
            if want is not None and spec.get("replicas") != want:
                r = self.kube.scale(NAMESPACE, name, want)
                done.append(f"scaled {name} back to {want}: {r.message}")
        for n in self._nodes():
            if n.get("spec", {}).get("unschedulable"):
                r = self.kube.uncordon(str(n["metadata"]["name"]))
                done.append(f"uncordoned {n['metadata']['name']}: {r.message}")
        return done

    async def replicas(self) -> dict[str, int]:
        items = await asyncio.to_thread(self._deployments)
        return {
            str(d["metadata"]["name"]): int(d.get("spec", {}).get("replicas") or 0) for d in items
        }

    # --- incidents ---------------------------------------------------------------------

    async def executions(self, since: float = 0.0) -> list[Execution]:
        out = [
            Execution(i.id, i.run_id, i.started_at.timestamp(), i.execution == "RUNNING")
            for i in await self.incidents.find(limit=10_000)
            if i.started_at.timestamp() >= since
        ]
        return sorted(out, key=lambda e: e.started_at)

    async def read(self, ex: Execution) -> IncidentState:
        """The incident as its queries show it now; with its report once it has closed."""
        handle = self.incidents.handle(ex.id, ex.run_id)
        desc = await handle.describe()
        ex = Execution(
            ex.id, ex.run_id, ex.started_at, desc.status == WorkflowExecutionStatus.RUNNING
        )
        try:
            live = await self.incidents.state(ex.id, ex.run_id)
        except IncidentError:  # a run that failed early may not answer
            live = None
        status = live.status if live else None
        rca, plan = (live.rca, live.plan) if live else (None, None)
        audit = live.audit if live else []
        report = None
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            report = await handle.result()
            status, rca, plan, audit = report.status, report.rca, report.plan, report.audit
        return IncidentState(
            ex,
            status,
            await self._entities(ex, live.joined if live else []),
            rca,
            plan,
            live.pending if live else None,
            audit,
            live.actions if live else [],
            report,
        )

    async def _entities(self, ex: Execution, joined: Sequence[Anomaly]) -> tuple[str, ...]:
        """The entities of the anomalies that opened the incident and of those that joined."""
        try:
            incident, anomalies = await read_anomalies(self.incidents, ex.id, ex.run_id)
        except IncidentError:
            return tuple(dict.fromkeys(a.entity for a in joined))
        found = [a.entity for a in incident.anomalies] + [a.entity for a in anomalies]
        return tuple(dict.fromkeys(found))

    async def detection_passes(self) -> int:
        """Passes the detection loop has completed in its current run."""
        from workflows.detection import DetectionLoopWorkflow

        handle = self.client.get_workflow_handle_for(DetectionLoopWorkflow.run, DETECTION_LOOP_ID)
        try:
            status = await handle.query(DetectionLoopWorkflow.loop_status)
        except RPCError:
            return 0
        return int(status.passes)

    async def settle(self, seconds: float, reason: str) -> list[str]:
        """Let the detector run for at least `seconds` and five passes (the first one primes
        from history and may flag the jump from backfilled to live samples); then close the
        incidents opened meanwhile, so that a scenario opens fresh ones (an open incident of the
        namespace would absorb the scenario's anomalies). Returns the ids closed."""
        await asyncio.sleep(seconds)
        for _ in range(180):
            if await self.detection_passes() >= 5:
                break
            await asyncio.sleep(1.0)
        return await self.terminate_running(reason)

    async def approve(self, incident_id: str, signers: Mapping[str, DecisionSigner]) -> list[str]:
        """Approve the pending plan as each approver of `signers` (identity -> key) the policy
        names, until no more approvals are needed. The workflow's validator checks every one."""
        messages: list[str] = []
        for identity, signer in signers.items():
            state = await self.incidents.show(incident_id)
            pending = state.pending
            if pending is None:
                break
            if identity not in pending.decision.approvers or identity in pending.approved_by:
                continue
            try:
                outcome = await self.incidents.decide(
                    incident_id,
                    signer,
                    approve=True,
                    plan_hash=pending.plan_hash,
                    reason="approved by the demo/evaluation policy",
                )
            except (AlreadyApprovedError, NotAnApproverError):
                continue
            messages.append(outcome.message)
            if outcome.result.approvals_needed == 0:
                break
        return messages

    async def terminate_running(self, reason: str) -> list[str]:
        ended = []
        for ex in await self.executions():
            if ex.running:
                handle = self.incidents.handle(ex.id, ex.run_id)
                with contextlib.suppress(RPCError):  # it closed in the meantime
                    await handle.terminate(reason=reason)
                    ended.append(ex.id)
        return ended


@contextlib.asynccontextmanager
async def live_lab(settings: Settings, lab: LabInfo) -> AsyncIterator[LiveLab]:
    """The daemon against a running lab (`settings` from `lab_settings`)."""
    async with embedded_daemon(settings) as daemon:
        live = LiveLab(lab, daemon)
        try:
            yield live
        finally:
            await live.aclose()
