"""Turn what the cluster says (rollouts, events, pod statuses, node conditions) into ChangeEvents.

Each event names the Kubernetes object behind it (`Kind/namespace/name`), which the report cites.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from aiops.agent.metrics import workload_of_pod
from aiops.agent.ports import (
    ClusterReader,
    DeploymentInfo,
    EventInfo,
    NodeInfo,
    PodInfo,
    ReplicaSetInfo,
)
from aiops.rca import ChangeEvent, ChangeKind

# Node conditions that mean trouble when True (Ready means trouble when not True).
_BAD_WHEN_TRUE = {"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}
_OOM = re.compile(r"oom", re.IGNORECASE)
_ROLLOUT_SCALE = re.compile(r"Scaled (up|down) replica set (\S+)")


@dataclass
class ClusterFacts:
    replicasets: list[ReplicaSetInfo] = field(default_factory=list)
    deployments: list[DeploymentInfo] = field(default_factory=list)
    pods: list[PodInfo] = field(default_factory=list)
    events: list[EventInfo] = field(default_factory=list)
    nodes: list[NodeInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def pod_workload(self, pod: PodInfo) -> str:
        if pod.owner_kind == "ReplicaSet" and pod.owner_name:
            for rs in self.replicasets:
                if rs.name == pod.owner_name and rs.deployment:
                    return rs.deployment
            return workload_of_pod(pod.name + "-x0000")  # strip the RS hash of the owner name
        if pod.owner_name and pod.owner_kind in ("StatefulSet", "DaemonSet"):
            return pod.owner_name
        return workload_of_pod(pod.name)

    def placement(self) -> dict[str, list[str]]:
        out: dict[str, set[str]] = {}
        for p in self.pods:
            if p.node:
                out.setdefault(self.pod_workload(p), set()).add(p.node)
        return {k: sorted(v) for k, v in out.items()}


T = TypeVar("T")


def read_cluster(reader: ClusterReader, namespace: str) -> ClusterFacts:
    """Everything the deterministic path reads; a failing call becomes a note, not a failure.
    The reads run at once, so an API server that does not answer costs one request timeout,
    not five in a row (which outlasted the investigation's activity)."""
    facts = ClusterFacts()

    def attempt(what: str, fn: Callable[[], list[T]]) -> list[T]:
        try:
            return fn()
        except Exception as exc:
            facts.notes.append(f"could not list {what}: {exc}")
            return []

    with ThreadPoolExecutor(max_workers=5, thread_name_prefix="cluster-read") as pool:
        replicasets = pool.submit(
            attempt, "replicasets", lambda: reader.list_replicasets(namespace)
        )
        deployments = pool.submit(
            attempt, "deployments", lambda: reader.list_deployments(namespace)
        )
        pods = pool.submit(attempt, "pods", lambda: reader.list_pods(namespace))
        events = pool.submit(attempt, "events", lambda: reader.list_events(namespace))
        nodes = pool.submit(attempt, "nodes", reader.list_nodes)
    facts.replicasets = replicasets.result()
    facts.deployments = deployments.result()
    facts.pods = pods.result()
    facts.events = events.result()
    facts.nodes = nodes.result()
    facts.notes.sort()  # the reads finish in any order; the notes read the same every time
    return facts


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def change_events(
    facts: ClusterFacts,
    namespace: str,
    placement: Mapping[str, Iterable[str]],
    *,
    since: datetime,
    until: datetime,
) -> list[ChangeEvent]:
    """Changes between `since` and `until` (the investigation window)."""
    since, until = _utc(since) or since, _utc(until) or until

    def within(at: datetime | None) -> bool:
        at = _utc(at)
        return at is not None and since <= at <= until

    out: list[ChangeEvent] = []
    rollout_at: dict[str, datetime] = {}

    # Rollouts: a ReplicaSet of revision > 1 created in the window is a new version going out,
    # unless it runs no pod any more: a release already rolled back (by aiops or a person) is
    # no suspect for what happens after it, or every fault in the next hour would blame it.
    # Nor is a ReplicaSet that runs a release an earlier revision ran: a `rollout restart` only
    # stamps the template, and a rollback brings back a release that ran before.
    by_deploy: dict[str, list[ReplicaSetInfo]] = {}
    for rs in facts.replicasets:
        if rs.deployment:
            by_deploy.setdefault(rs.deployment, []).append(rs)
    for deploy, sets in by_deploy.items():
        sets.sort(key=lambda r: (r.revision or 0, r.name))
        for i, rs in enumerate(sets):
            if (rs.revision or 0) <= 1 or not within(rs.created_at) or rs.replicas == 0:
                continue
            if rs.release is not None and any(o.release == rs.release for o in sets[:i]):
                continue
            assert rs.created_at is not None
            prev = sets[i - 1] if i > 0 else None
            detail = f"revision {rs.revision}"
            if prev is not None and prev.images != rs.images:
                detail += f", image {', '.join(prev.images)} -> {', '.join(rs.images)}"
            elif rs.images:
                detail += f", image {', '.join(rs.images)}"
            out.append(
                ChangeEvent(
                    service=deploy,
                    kind=ChangeKind.ROLLOUT,
                    at=_utc(rs.created_at) or rs.created_at,
                    source=f"ReplicaSet/{namespace}/{rs.name}",
                    detail=detail,
                )
            )
            rollout_at[deploy] = _utc(rs.created_at) or rs.created_at

    # Pod statuses: the last termination of each container in the window.
    for pod in facts.pods:
        wl = facts.pod_workload(pod)
        for c in pod.containers:
            if c.restart_count <= 0 or not within(c.last_terminated_at):
                continue
            assert c.last_terminated_at is not None
            oom = c.last_terminated_reason is not None and _OOM.search(c.last_terminated_reason)
            waiting = f", now {c.waiting_reason}" if c.waiting_reason else ""
            out.append(
                ChangeEvent(
                    service=wl,
                    kind=ChangeKind.OOM_KILL if oom else ChangeKind.RESTART,
                    at=_utc(c.last_terminated_at) or c.last_terminated_at,
                    source=f"Pod/{namespace}/{pod.name}",
                    detail=f"container {c.name} restarted {c.restart_count}x, last "
                    f"{c.last_terminated_reason or 'terminated'} "
                    f"(exit {c.last_exit_code}){waiting}",
                )
            )

    # Events: back-offs and OOM kills (one more restart each), scaling that is not a rollout.
    pods_by_name = {p.name: p for p in facts.pods}
    for ev in facts.events:
        at = _utc(ev.last_at or ev.first_at)
        if not within(at):
            continue
        assert at is not None
        source = f"{ev.object_kind}/{namespace}/{ev.object_name}"
        if ev.object_kind == "Pod":
            owner = pods_by_name.get(ev.object_name)
            if owner is None and facts.pods:
                # The pod is gone (replaced by a rollback or a restart): its back-offs are an
                # earlier incident's, and a crash loop is pods that keep exiting now.
                continue
            wl = facts.pod_workload(owner) if owner else workload_of_pod(ev.object_name)
            if ev.reason == "BackOff" or ev.reason == "OOMKilling" or _OOM.search(ev.message):
                kind = (
                    ChangeKind.OOM_KILL
                    if _OOM.search(ev.reason + ev.message)
                    else (ChangeKind.RESTART)
                )
                out.append(
                    ChangeEvent(
                        service=wl,
                        kind=kind,
                        at=at,
                        source=source,
                        detail=f"{ev.reason}: {ev.message}"[:200],
                    )
                )
        elif ev.object_kind == "Deployment" and ev.reason == "ScalingReplicaSet":
            rolled = rollout_at.get(ev.object_name)
            if rolled is not None and abs((at - rolled).total_seconds()) < 900:
                continue  # part of the rollout already counted
            out.append(
                ChangeEvent(
                    service=ev.object_name,
                    kind=ChangeKind.SCALE,
                    at=at,
                    source=source,
                    detail=ev.message[:200],
                )
            )

    # Nodes: a bad condition that began in the window blames the node and what runs on it.
    on_node: dict[str, list[str]] = {}
    for svc, nodes in placement.items():
        for nd in nodes:
            on_node.setdefault(nd, []).append(svc)
    for node in facts.nodes:
        for cond in node.conditions:
            bad = (cond.type == "Ready" and cond.status != "True") or (
                cond.type in _BAD_WHEN_TRUE and cond.status == "True"
            )
            if bad and within(cond.last_transition):
                assert cond.last_transition is not None
                out.append(
                    ChangeEvent(
                        service=node.name,
                        kind=ChangeKind.CORDON,
                        at=_utc(cond.last_transition) or cond.last_transition,
                        source=f"Node/{node.name}",
                        detail=f"condition {cond.type}={cond.status}"
                        + (f" ({cond.reason})" if cond.reason else ""),
                        affects=sorted(on_node.get(node.name, [])),
                    )
                )
    for ev in facts.events:
        at = _utc(ev.last_at or ev.first_at)
        if (
            ev.object_kind == "Node"
            and ev.reason in ("NodeNotSchedulable", "NodeNotReady")
            and (within(at))
        ):
            assert at is not None
            out.append(
                ChangeEvent(
                    service=ev.object_name,
                    kind=ChangeKind.CORDON,
                    at=at,
                    source=f"Node/{ev.object_name}",
                    detail=f"{ev.reason}: {ev.message}"[:200],
                    affects=sorted(on_node.get(ev.object_name, [])),
                )
            )
    return sorted(out, key=lambda e: (e.timestamp, e.service, e.kind.value))


def bad_nodes(facts: ClusterFacts) -> dict[str, str]:
    """node -> why it is unhealthy right now (conditions, cordon)."""
    out: dict[str, str] = {}
    for node in facts.nodes:
        why = [
            f"{c.type}={c.status}"
            for c in node.conditions
            if (c.type == "Ready" and c.status != "True")
            or (c.type in _BAD_WHEN_TRUE and c.status == "True")
        ]
        if node.unschedulable:
            why.append("cordoned")
        if why:
            out[node.name] = ", ".join(why)
    return out
