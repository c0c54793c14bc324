"""The ReplicaSet controller: as many live pods as spec.replicas, and their status."""

from __future__ import annotations

import copy
from collections import defaultdict

from aiops_lab.cluster.kubelet import delete_pod
from aiops_lab.cluster.objects import (
    Obj,
    is_terminating,
    owner_ref,
    owner_uid,
    pod_ready,
    rfc3339,
)
from aiops_lab.cluster.state import PodRuntime, State


def _new_pod(state: State, rs: Obj, now: float) -> Obj:
    tmpl = rs["spec"]["template"]
    tm = tmpl.get("metadata") or {}
    rs_name = rs["metadata"]["name"]
    spec = copy.deepcopy(tmpl.get("spec") or {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("securityContext", {})
    while True:
        name = f"{rs_name}-{state.random_suffix()}"
        if state.store.get("pods", rs["metadata"]["namespace"], name) is None:
            break
    pod_annotations = dict(tm.get("annotations") or {})
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": f"{rs_name}-",
            "namespace": rs["metadata"]["namespace"],
            "uid": state.new_uid(),
            "creationTimestamp": rfc3339(now),
            "labels": dict(tm.get("labels") or {}),
            "annotations": pod_annotations,
            "ownerReferences": [owner_ref(rs)],
        },
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }
    state.store.put("pods", pod)
    state.runtime[pod["metadata"]["uid"]] = PodRuntime(
        pod["metadata"]["uid"], pod["metadata"]["namespace"], name
    )
    return pod


def _deletion_rank(pod: Obj) -> tuple[int, int, int, int, str]:
    """Which pods a ReplicaSet removes first: unscheduled, pending, not ready, restarted, newest."""
    status = pod.get("status") or {}
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    created = pod["metadata"].get("creationTimestamp", "")
    return (
        1 if pod.get("spec", {}).get("nodeName") else 0,
        1 if status.get("phase") == "Running" else 0,
        1 if pod_ready(pod) else 0,
        -restarts,
        "".join(chr(255 - ord(ch)) for ch in created),  # newest first
    )


def sync_replicasets(state: State, now: float) -> bool:
    changed = False
    by_owner: dict[str | None, list[Obj]] = defaultdict(list)
    for pod in state.store.items("pods"):
        by_owner[owner_uid(pod)].append(pod)
    for rs in state.store.items("replicasets"):
        uid = rs["metadata"]["uid"]
        active = [p for p in by_owner.get(uid, []) if not is_terminating(p)]
        want = int(rs["spec"].get("replicas", 1))
        if len(active) < want:
            for _ in range(want - len(active)):
                pod = _new_pod(state, rs, now)
                active.append(pod)
                state.record_event(
                    now,
                    rs,
                    "SuccessfulCreate",
                    f"Created pod: {pod['metadata']['name']}",
                    component="replicaset-controller",
                )
            changed = True
        elif len(active) > want:
            active.sort(key=_deletion_rank)
            for pod in active[: len(active) - want]:
                delete_pod(state, pod, now)
                state.record_event(
                    now,
                    rs,
                    "SuccessfulDelete",
                    f"Deleted pod: {pod['metadata']['name']}",
                    component="replicaset-controller",
                )
            active = active[len(active) - want :]
            changed = True
        ready = sum(1 for p in active if pod_ready(p))
        status: Obj = {
            "replicas": len(active),
            "fullyLabeledReplicas": len(active),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if status != rs.get("status"):
            rs["status"] = status
            state.store.touch(rs)
            changed = True
    return changed
