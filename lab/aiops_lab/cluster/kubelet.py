"""The kubelet of the lab: containers start after a delay, die when the simulation says so,
restart after CrashLoopBackOff, report status; graceful pod deletion."""

from __future__ import annotations

import hashlib

from aiops_lab.cluster.objects import (
    REVISION,
    Obj,
    annotations_of,
    condition,
    is_terminating,
    merge_conditions,
    node_ready,
    rfc3339,
)
from aiops_lab.cluster.state import PodRuntime, State
from aiops_lab.ports import BEHAVIOUR_ANNOTATION


def _container(pod: Obj) -> Obj:
    containers: list[Obj] = pod.get("spec", {}).get("containers") or [{}]
    return containers[0]


def _log(state: State, rt: PodRuntime, now: float, line: str) -> None:
    rt.logs.append(f"{rfc3339(now)} {line}")
    rt.logged += 1
    if len(rt.logs) > state.config.max_log_lines:
        del rt.logs[: len(rt.logs) - state.config.max_log_lines]


def sync_pods(state: State, now: float) -> bool:
    changed = False
    nodes = {n["metadata"]["name"]: n for n in state.store.items("nodes")}
    for pod in state.store.items("pods"):
        m = pod["metadata"]
        rt = state.runtime.get(m["uid"])
        if rt is None:
            rt = state.runtime[m["uid"]] = PodRuntime(m["uid"], m["namespace"], m["name"])
        node_name = pod.get("spec", {}).get("nodeName")
        if is_terminating(pod):
            if rt.terminate_at is None or now >= rt.terminate_at:
                state.store.remove("pods", m["namespace"], m["name"])
                state.runtime.pop(m["uid"], None)
                changed = True
                continue
        elif node_name and not rt.running and rt.start_at is not None and now >= rt.start_at:
            _start_container(state, pod, rt, now, node_name)
        node = nodes.get(node_name or "")
        status = pod_status(state, pod, rt, node is not None and node_ready(node), now)
        if status != pod.get("status"):
            pod["status"] = status
            state.store.touch(pod)
            changed = True
    return changed


def _start_container(state: State, pod: Obj, rt: PodRuntime, now: float, node: str) -> None:
    c = _container(pod)
    first = rt.container_id == ""
    if not first:
        rt.previous_logs, rt.previous_logged = rt.logs, rt.logged
        rt.logs, rt.logged = [], 0
    rt.running = True
    rt.started_at = now
    if state.config.external_readiness:
        rt.ready_override = False  # a new container waits for its readiness probe
    rt.start_at = None
    rt.waiting_reason = ""
    rt.waiting_message = ""
    rt.container_id = (
        "containerd://" + hashlib.sha256(f"{rt.uid}/{rt.restarts}".encode()).hexdigest()
    )
    owner: Obj = next(iter(pod["metadata"].get("ownerReferences") or []), {})
    rs = state.store.get("replicasets", pod["metadata"]["namespace"], owner.get("name", ""))
    revision = annotations_of(rs).get(REVISION, "") if rs is not None else ""
    _log(
        state,
        rt,
        now,
        f'level=info msg="starting {c.get("name", "server")}" image={c.get("image", "")}',
    )
    if revision:
        _log(state, rt, now, f'level=info msg="revision {revision}"')
    behaviour = annotations_of(pod).get(BEHAVIOUR_ANNOTATION, "")
    crash = next(
        (p.split(":", 1)[1] for p in behaviour.split(",") if p.strip().startswith("crash:")), None
    )
    if crash:
        # What a bad config looks like from the outside: the process fails its start-up checks.
        _log(state, rt, now, f'level=error msg="invalid configuration" detail={crash}')
    else:
        port = ((c.get("ports") or [{}])[0]).get("containerPort", 8080)
        _log(state, rt, now, f'level=info msg="listening" port={port}')
    if first:
        state.record_event(
            now,
            pod,
            "Pulled",
            f'Container image "{c.get("image", "")}" already present on machine',
            component="kubelet",
            host=node,
        )
    state.record_event(
        now,
        pod,
        "Created",
        f"Created container {c.get('name', '')}",
        component="kubelet",
        host=node,
    )
    state.record_event(
        now,
        pod,
        "Started",
        f"Started container {c.get('name', '')}",
        component="kubelet",
        host=node,
    )


def container_exit(state: State, pod: Obj, reason: str, exit_code: int, now: float) -> None:
    """A container died: count the restart and schedule it after the kubelet's back-off."""
    m = pod["metadata"]
    rt = state.runtime[m["uid"]]
    c = _container(pod)
    if reason == "OOMKilled":
        _log(state, rt, now, 'level=error msg="out of memory"')
    else:
        _log(state, rt, now, f'level=fatal msg="exiting" code={exit_code} reason={reason}')
    rt.restarts += 1
    rt.last_terminated = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": rfc3339(rt.started_at or now),
        "finishedAt": rfc3339(now),
        "containerID": rt.container_id,
    }
    rt.running = False
    delay = (
        0.0
        if rt.restarts == 1
        else min(state.config.backoff_cap_s, state.config.backoff_base_s * 2 ** (rt.restarts - 2))
    )
    rt.start_at = now + delay
    if delay > 0:
        rt.waiting_reason = "CrashLoopBackOff"
        rt.waiting_message = (
            f"back-off {int(delay)}s restarting failed container={c.get('name', '')} "
            f"pod={m['name']}_{m['namespace']}({m['uid']})"
        )
        state.record_event(
            now,
            pod,
            "BackOff",
            f"Back-off restarting failed container {c.get('name', '')} in "
            f"pod {m['name']}_{m['namespace']}({m['uid']})",
            "Warning",
            component="kubelet",
            host=pod.get("spec", {}).get("nodeName"),
        )
    else:
        rt.waiting_reason = "ContainerCreating"
        rt.waiting_message = ""


def _pod_ip(pod: Obj, node: str) -> str:
    h = int(hashlib.sha256(pod["metadata"]["uid"].encode()).hexdigest()[:6], 16)
    node_index = (ord(node[-1]) - ord("a")) % 200 if node else 0
    return f"10.244.{node_index}.{2 + h % 250}"


def pod_status(state: State, pod: Obj, rt: PodRuntime, on_ready_node: bool, now: float) -> Obj:
    old: Obj = pod.get("status") or {}
    node = pod.get("spec", {}).get("nodeName")
    at = rfc3339(now)
    terminating = is_terminating(pod)
    ready = rt.running and not terminating and on_ready_node and rt.ready_override is not False
    c = _container(pod)
    image = c.get("image", "")
    cs: Obj = {
        "name": c.get("name", ""),
        "image": image,
        "imageID": f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}",
        "ready": ready,
        "started": rt.running,
        "restartCount": rt.restarts,
        "state": {},
        "lastState": {},
    }
    if rt.container_id:
        cs["containerID"] = rt.container_id
    if rt.running:
        cs["state"] = {"running": {"startedAt": rfc3339(rt.started_at)}}
    elif node:
        waiting: Obj = {"reason": rt.waiting_reason or "ContainerCreating"}
        if rt.waiting_message:
            waiting["message"] = rt.waiting_message
        cs["state"] = {"waiting": waiting}
    if rt.last_terminated:
        cs["lastState"] = {"terminated": dict(rt.last_terminated)}
    phase = "Running" if (rt.running or rt.restarts > 0) else "Pending"
    conditions: list[Obj] = []
    if node:
        conditions.append(condition("PodScheduled", True, "", "", at))
        conditions.append(condition("Initialized", True, "", "", at))
        conditions.append(
            condition(
                "ContainersReady",
                ready,
                "" if ready else "ContainersNotReady",
                "" if ready else f"containers with unready status: [{cs['name']}]",
                at,
            )
        )
        conditions.append(
            condition(
                "Ready",
                ready,
                "" if ready else "ContainersNotReady",
                "" if ready else f"containers with unready status: [{cs['name']}]",
                at,
            )
        )
    else:
        sched = old.get("conditions") or []
        reason = next((c.get("reason", "") for c in sched if c.get("type") == "PodScheduled"), "")
        message = next((c.get("message", "") for c in sched if c.get("type") == "PodScheduled"), "")
        conditions.append(condition("PodScheduled", False, reason or "Unschedulable", message, at))
    for cond in conditions:
        if not cond["reason"]:
            del cond["reason"]
        if not cond["message"]:
            del cond["message"]
    status: Obj = {
        "phase": phase,
        "conditions": merge_conditions(old.get("conditions"), conditions),
        "qosClass": old.get("qosClass", "Burstable"),
    }
    if node:
        node_obj_ip = f"192.168.0.{10 + (ord(node[-1]) - ord('a')) % 200}"
        status["hostIP"] = node_obj_ip
        status["hostIPs"] = [{"ip": node_obj_ip}]
        ip = _pod_ip(pod, node)
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
        status["startTime"] = old.get("startTime", at)
        status["containerStatuses"] = [cs]
    return status


def delete_pod(state: State, pod: Obj, now: float, grace_s: float | None = None) -> None:
    """Graceful deletion: the pod is marked terminating (no longer ready) and goes away later."""
    m = pod["metadata"]
    if is_terminating(pod):
        return
    rt = state.runtime.setdefault(m["uid"], PodRuntime(m["uid"], m["namespace"], m["name"]))
    wait = (
        state.config.pod_terminate_s
        if grace_s is None
        else min(grace_s, state.config.pod_terminate_s)
    )
    grace = int(
        pod.get("spec", {}).get("terminationGracePeriodSeconds", 30) if grace_s is None else grace_s
    )
    m["deletionTimestamp"] = rfc3339(now + grace)
    m["deletionGracePeriodSeconds"] = grace
    rt.terminate_at = now + wait
    node = pod.get("spec", {}).get("nodeName")
    if node and rt.running:
        state.record_event(
            now,
            pod,
            "Killing",
            f"Stopping container {_container(pod).get('name', '')}",
            component="kubelet",
            host=node,
        )
    state.store.touch(pod)
