"""The scheduler: pending pods onto ready, schedulable nodes with room for their requests,
spreading the replicas of one owner."""

from __future__ import annotations

from collections import defaultdict

from aiops_lab.cluster.objects import (
    Obj,
    condition,
    is_terminating,
    node_ready,
    owner_uid,
    rfc3339,
)
from aiops_lab.cluster.quantity import parse_quantity
from aiops_lab.cluster.state import PodRuntime, State


def _requests(pod: Obj) -> tuple[float, float]:
    cpu = mem = 0.0
    for c in pod.get("spec", {}).get("containers") or []:
        res = c.get("resources") or {}
        req = res.get("requests") or res.get("limits") or {}
        cpu += parse_quantity(req.get("cpu", "0"))
        mem += parse_quantity(req.get("memory", "0"))
    return cpu, mem


def schedule(state: State, now: float) -> bool:
    pods = state.store.items("pods")
    pending = [p for p in pods if not p.get("spec", {}).get("nodeName") and not is_terminating(p)]
    if not pending:
        return False
    nodes = sorted(state.store.items("nodes"), key=lambda n: n["metadata"]["name"])
    used: dict[str, list[float]] = {n["metadata"]["name"]: [0.0, 0.0, 0.0] for n in nodes}
    owners: dict[tuple[str, str | None], int] = defaultdict(int)
    for p in pods:
        node_name = p.get("spec", {}).get("nodeName")
        if node_name in used and not is_terminating(p):
            cpu, mem = _requests(p)
            used[node_name][0] += cpu
            used[node_name][1] += mem
            used[node_name][2] += 1
            owners[(node_name, owner_uid(p))] += 1
    changed = False
    pending.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
    for pod in pending:
        cpu, mem = _requests(pod)
        reasons: dict[str, int] = defaultdict(int)
        candidates: list[tuple[int, float, str]] = []
        for node in nodes:
            name = node["metadata"]["name"]
            alloc = node.get("status", {}).get("allocatable", {})
            if not node_ready(node):
                reasons["node(s) were not ready"] += 1
            elif node.get("spec", {}).get("unschedulable"):
                reasons["node(s) were unschedulable"] += 1
            elif used[name][0] + cpu > parse_quantity(alloc.get("cpu", "0")):
                reasons["Insufficient cpu"] += 1
            elif used[name][1] + mem > parse_quantity(alloc.get("memory", "0")):
                reasons["Insufficient memory"] += 1
            elif used[name][2] + 1 > parse_quantity(alloc.get("pods", "110")):
                reasons["Too many pods"] += 1
            else:
                share = used[name][0] / max(parse_quantity(alloc.get("cpu", "1")), 1e-9)
                candidates.append((owners[(name, owner_uid(pod))], share, name))
        m = pod["metadata"]
        rt = state.runtime.setdefault(m["uid"], PodRuntime(m["uid"], m["namespace"], m["name"]))
        if not candidates:
            if not rt.unschedulable_reported:
                detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
                message = f"0/{len(nodes)} nodes are available: {detail}."
                pod.setdefault("status", {})["conditions"] = [
                    condition("PodScheduled", False, "Unschedulable", message, rfc3339(now))
                ]
                state.store.touch(pod)
                state.record_event(
                    now, pod, "FailedScheduling", message, "Warning", component="default-scheduler"
                )
                rt.unschedulable_reported = True
                changed = True
            continue
        _, _, chosen = min(candidates)
        pod["spec"]["nodeName"] = chosen
        used[chosen][0] += cpu
        used[chosen][1] += mem
        used[chosen][2] += 1
        owners[(chosen, owner_uid(pod))] += 1
        rt.start_at = now + state.config.pod_start_s
        rt.unschedulable_reported = False
        state.store.touch(pod)
        state.record_event(
            now,
            pod,
            "Scheduled",
            f"Successfully assigned {m['namespace']}/{m['name']} to {chosen}",
            component="default-scheduler",
        )
        changed = True
    return changed
