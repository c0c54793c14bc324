"""Controllers that make the object store behave like a cluster.

One reconcile pass runs, in order: node controller (cordon taints), kubelet (containers start,
restart after back-off, terminate), scheduler (pods onto schedulable ready nodes), ReplicaSet
controller (pod counts), Deployment controller (ReplicaSet per template, rolling update, revision
numbers, status) and disruption controller (PodDisruptionBudget status). Passes repeat until
nothing changes, so a mutation settles within one call; time-based steps (start delay, back-off,
graceful termination) progress on each `tick`.
"""

from __future__ import annotations

from aiops_lab.cluster.daemonset import sync_daemonsets
from aiops_lab.cluster.deployment import sync_deployments
from aiops_lab.cluster.disruption import sync_disruption_budgets
from aiops_lab.cluster.kubelet import sync_pods
from aiops_lab.cluster.objects import rfc3339
from aiops_lab.cluster.replicaset import sync_replicasets
from aiops_lab.cluster.scheduler import schedule
from aiops_lab.cluster.state import State

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
MAX_PASSES = 50


def reconcile(state: State, now: float) -> None:
    for _ in range(MAX_PASSES):
        changed = _nodes(state, now)
        changed |= sync_pods(state, now)
        changed |= schedule(state, now)
        changed |= sync_replicasets(state, now)
        changed |= sync_deployments(state, now)
        changed |= sync_disruption_budgets(state, now)
        changed |= sync_daemonsets(state, now)
        if not changed:
            return


# ----------------------------------------------------------------------------- nodes


def _nodes(state: State, now: float) -> bool:
    changed = False
    for node in state.store.items("nodes"):
        spec = node.setdefault("spec", {})
        cordoned = bool(spec.get("unschedulable"))
        taints = [t for t in spec.get("taints") or [] if t.get("key") != UNSCHEDULABLE_TAINT]
        if cordoned:
            taints.append(
                {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": rfc3339(now)}
            )
        had = any(t.get("key") == UNSCHEDULABLE_TAINT for t in spec.get("taints") or [])
        if had != cordoned:
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            state.store.touch(node)
            state.record_event(
                now,
                node,
                "NodeNotSchedulable" if cordoned else "NodeSchedulable",
                f"Node {node['metadata']['name']} status is now: "
                + ("NodeNotSchedulable" if cordoned else "NodeSchedulable"),
                component="kubelet",
                host=node["metadata"]["name"],
            )
            changed = True
    return changed
