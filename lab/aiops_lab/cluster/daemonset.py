"""DaemonSet status. The lab's DaemonSets (kube-proxy) have their pods bound at seeding, one per
node; this keeps the counts a drain or `kubectl get ds` reads true."""

from __future__ import annotations

from collections import defaultdict

from aiops_lab.cluster.objects import Obj, is_terminating, owner_uid, pod_ready
from aiops_lab.cluster.state import State


def sync_daemonsets(state: State, now: float) -> bool:
    daemonsets = state.store.items("daemonsets")
    if not daemonsets:
        return False
    by_owner: dict[str | None, list[Obj]] = defaultdict(list)
    for pod in state.store.items("pods"):
        if not is_terminating(pod):
            by_owner[owner_uid(pod)].append(pod)
    changed = False
    for ds in daemonsets:
        pods = by_owner.get(ds["metadata"]["uid"], [])
        ready = sum(1 for p in pods if pod_ready(p))
        status: Obj = {
            "currentNumberScheduled": len(pods),
            "desiredNumberScheduled": len(pods),
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": len(pods),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if ready < len(pods):
            status["numberUnavailable"] = len(pods) - ready
        if status != ds.get("status"):
            ds["status"] = status
            state.store.touch(ds)
            changed = True
    return changed
