"""Controllers that make the object store behave like a cluster.

One reconcile pass runs, in order: node controller (cordon taints), kubelet (containers start,
restart after back-off, terminate), scheduler (pods onto schedulable ready nodes), ReplicaSet
controller (pod counts), Deployment controller (ReplicaSet per template, rolling update, revision
numbers, status) and disruption controller (PodDisruptionBudget status). Passes repeat until
nothing changes, so a mutation settles within one call; time-based steps (start delay, back-off,
graceful termination) progress on each `tick`.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections import defaultdict
from typing import Any

from aiops.lab.cluster.objects import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    POD_TEMPLATE_HASH,
    REVISION,
    REVISION_HISTORY,
    Obj,
    annotations_of,
    condition,
    is_terminating,
    merge_conditions,
    node_ready,
    owner_ref,
    owner_uid,
    pod_ready,
    revision_of,
    rfc3339,
    same_template,
    template_hash,
    template_without_hash,
)
from aiops.lab.cluster.quantity import parse_quantity
from aiops.lab.cluster.selectors import selector_to_matcher
from aiops.lab.cluster.state import PodRuntime, State
from aiops.lab.ports import BEHAVIOUR_ANNOTATION

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
MAX_PASSES = 50


def reconcile(state: State, now: float) -> None:
    for _ in range(MAX_PASSES):
        changed = _nodes(state, now)
        changed |= _kubelet(state, now)
        changed |= _scheduler(state, now)
        changed |= _replicasets(state, now)
        changed |= _deployments(state, now)
        changed |= _disruption_budgets(state, now)
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


def node_schedulable(node: Obj) -> bool:
    return node_ready(node) and not node.get("spec", {}).get("unschedulable")


# ----------------------------------------------------------------------------- kubelet


def _container(pod: Obj) -> Obj:
    containers: list[Obj] = pod.get("spec", {}).get("containers") or [{}]
    return containers[0]


def _log(state: State, rt: PodRuntime, now: float, line: str) -> None:
    rt.logs.append(f"{rfc3339(now)} {line}")
    if len(rt.logs) > state.config.max_log_lines:
        del rt.logs[: len(rt.logs) - state.config.max_log_lines]


def _kubelet(state: State, now: float) -> bool:
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
        rt.previous_logs = rt.logs
        rt.logs = []
    rt.running = True
    rt.started_at = now
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
    if behaviour.startswith("crash:"):
        # What a bad config looks like from the outside: the process fails its start-up checks.
        _log(state, rt, now, f'level=error msg="invalid configuration" detail={behaviour[6:]}')
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


# ----------------------------------------------------------------------------- scheduler


def _requests(pod: Obj) -> tuple[float, float]:
    cpu = mem = 0.0
    for c in pod.get("spec", {}).get("containers") or []:
        res = c.get("resources") or {}
        req = res.get("requests") or res.get("limits") or {}
        cpu += parse_quantity(req.get("cpu", "0"))
        mem += parse_quantity(req.get("memory", "0"))
    return cpu, mem


def _scheduler(state: State, now: float) -> bool:
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


# ----------------------------------------------------------------------------- pods


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


def _replicasets(state: State, now: float) -> bool:
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


# ----------------------------------------------------------------------------- deployments


def _int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        fraction = float(value[:-1]) / 100.0 * total
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(value)


def surge_and_unavailable(deployment: Obj) -> tuple[int, int]:
    replicas = int(deployment["spec"].get("replicas", 1))
    rolling = (deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    surge = _int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _scale_rs(state: State, deployment: Obj, rs: Obj, replicas: int, now: float) -> None:
    before = int(rs["spec"].get("replicas", 0))
    if before == replicas:
        return
    rs["spec"]["replicas"] = replicas
    surge, _ = surge_and_unavailable(deployment)
    ann = rs["metadata"].setdefault("annotations", {})
    ann[DESIRED_REPLICAS] = str(deployment["spec"].get("replicas", 1))
    ann[MAX_REPLICAS] = str(int(deployment["spec"].get("replicas", 1)) + surge)
    state.store.touch(rs)
    direction = "up" if replicas > before else "down"
    state.record_event(
        now,
        deployment,
        "ScalingReplicaSet",
        f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {replicas}",
        component="deployment-controller",
    )


def _new_replicaset(state: State, deployment: Obj, revision: int, now: float) -> Obj:
    m = deployment["metadata"]
    tmpl = template_without_hash(deployment["spec"]["template"])
    h = template_hash(tmpl)
    tmpl.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = h
    selector = copy.deepcopy(deployment["spec"].get("selector") or {})
    selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = h
    surge, _ = surge_and_unavailable(deployment)
    rs: Obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{m['name']}-{h}",
            "namespace": m["namespace"],
            "uid": state.new_uid(),
            "generation": 1,
            "creationTimestamp": rfc3339(now),
            "labels": dict(tmpl["metadata"]["labels"]),
            "annotations": {
                REVISION: str(revision),
                DESIRED_REPLICAS: str(deployment["spec"].get("replicas", 1)),
                MAX_REPLICAS: str(int(deployment["spec"].get("replicas", 1)) + surge),
            },
            "ownerReferences": [owner_ref(deployment)],
        },
        "spec": {"replicas": 0, "selector": selector, "template": tmpl, "minReadySeconds": 0},
        "status": {"replicas": 0},
    }
    return state.store.put("replicasets", rs)


def _deployments(state: State, now: float) -> bool:
    changed = False
    by_owner: dict[str | None, list[Obj]] = defaultdict(list)
    for rs in state.store.items("replicasets"):
        by_owner[owner_uid(rs)].append(rs)
    for d in state.store.items("deployments"):
        before_rv = state.store.resource_version
        _reconcile_deployment(state, d, by_owner.get(d["metadata"]["uid"], []), now)
        changed |= state.store.resource_version != before_rv
    return changed


def _reconcile_deployment(state: State, d: Obj, owned: list[Obj], now: float) -> None:
    spec = d["spec"]
    replicas = int(spec.get("replicas", 1))
    max_rev = max((revision_of(rs) for rs in owned), default=0)
    new_rs = next(
        (rs for rs in owned if same_template(rs["spec"]["template"], spec["template"])), None
    )
    if new_rs is None:
        new_rs = _new_replicaset(state, d, max_rev + 1, now)
        owned = [*owned, new_rs]
    elif revision_of(new_rs) < max_rev:
        # An old template came back (rollback): its ReplicaSet becomes the newest revision.
        ann = new_rs["metadata"].setdefault("annotations", {})
        old_rev = ann.get(REVISION, "")
        history = [h for h in ann.get(REVISION_HISTORY, "").split(",") if h]
        ann[REVISION_HISTORY] = ",".join([*history, old_rev])
        ann[REVISION] = str(max_rev + 1)
        state.store.touch(new_rs)
    d_ann = d["metadata"].setdefault("annotations", {})
    if d_ann.get(REVISION) != annotations_of(new_rs).get(REVISION):
        d_ann[REVISION] = annotations_of(new_rs)[REVISION]
        state.store.touch(d)
    old = [rs for rs in owned if rs is not new_rs]
    if not spec.get("paused"):
        _roll(state, d, new_rs, old, replicas, now)
    _cleanup_history(state, d, old)
    _deployment_status(state, d, new_rs, owned, now)


def _roll(state: State, d: Obj, new_rs: Obj, old: list[Obj], replicas: int, now: float) -> None:
    old_active = [rs for rs in old if int(rs["spec"].get("replicas", 0)) > 0]
    strategy = (d["spec"].get("strategy") or {}).get("type", "RollingUpdate")
    if not old_active:
        _scale_rs(state, d, new_rs, replicas, now)
        return
    if strategy == "Recreate":
        for rs in old_active:
            _scale_rs(state, d, rs, 0, now)
        return
    if int(new_rs["spec"].get("replicas", 0)) > replicas:
        _scale_rs(state, d, new_rs, replicas, now)
    surge, unavailable = surge_and_unavailable(d)
    all_rs = [new_rs, *old_active]
    total = sum(int(rs["spec"].get("replicas", 0)) for rs in all_rs)
    new_replicas = int(new_rs["spec"].get("replicas", 0))
    if new_replicas < replicas and total < replicas + surge:
        up = min(replicas + surge - total, replicas - new_replicas)
        _scale_rs(state, d, new_rs, new_replicas + up, now)
    # Scale down old ReplicaSets only as far as availability allows (unhealthy pods first).
    total = sum(int(rs["spec"].get("replicas", 0)) for rs in all_rs)
    min_available = replicas - unavailable
    new_unavailable = int(new_rs["spec"].get("replicas", 0)) - int(
        new_rs.get("status", {}).get("availableReplicas", 0)
    )
    budget = total - min_available - new_unavailable
    if budget <= 0:
        return
    old_sorted = sorted(old_active, key=lambda rs: rs["metadata"].get("creationTimestamp", ""))
    for rs in old_sorted:
        unhealthy = int(rs["spec"]["replicas"]) - int(
            rs.get("status", {}).get("availableReplicas", 0)
        )
        cut = min(max(unhealthy, 0), budget)
        if cut > 0:
            _scale_rs(state, d, rs, int(rs["spec"]["replicas"]) - cut, now)
            budget -= cut
    available = sum(int(rs.get("status", {}).get("availableReplicas", 0)) for rs in all_rs)
    budget = min(budget, available - min_available)
    for rs in old_sorted:
        if budget <= 0:
            break
        cut = min(int(rs["spec"]["replicas"]), budget)
        if cut > 0:
            _scale_rs(state, d, rs, int(rs["spec"]["replicas"]) - cut, now)
            budget -= cut


def _cleanup_history(state: State, d: Obj, old: list[Obj]) -> None:
    limit = int(d["spec"].get("revisionHistoryLimit", 10))
    idle = [
        rs
        for rs in old
        if int(rs["spec"].get("replicas", 0)) == 0
        and int(rs.get("status", {}).get("replicas", 0)) == 0
    ]
    idle.sort(key=revision_of)
    for rs in idle[: max(0, len(idle) - limit)]:
        state.store.remove("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])


def _deployment_status(state: State, d: Obj, new_rs: Obj, owned: list[Obj], now: float) -> None:
    spec = d["spec"]
    replicas = int(spec.get("replicas", 1))
    _, unavailable = surge_and_unavailable(d)
    live = [
        rs
        for rs in owned
        if state.store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
        is not None
    ]
    total = sum(int(rs.get("status", {}).get("replicas", 0)) for rs in live)
    ready = sum(int(rs.get("status", {}).get("readyReplicas", 0)) for rs in live)
    available = sum(int(rs.get("status", {}).get("availableReplicas", 0)) for rs in live)
    updated = int(new_rs.get("status", {}).get("replicas", 0))
    new_available = int(new_rs.get("status", {}).get("availableReplicas", 0))
    at = rfc3339(now)
    name = new_rs["metadata"]["name"]
    complete = updated == replicas and new_available == replicas and total == replicas
    uid = d["metadata"]["uid"]
    marker = (updated, new_available, name)
    last_progress = state.progress.get(uid)
    if last_progress is None or last_progress[1] != marker:
        state.progress[uid] = (now, marker)
        last_progress = state.progress[uid]
    deadline = float(spec.get("progressDeadlineSeconds", 600))
    if complete:
        progressing = condition(
            "Progressing",
            True,
            "NewReplicaSetAvailable",
            f'ReplicaSet "{name}" has successfully progressed.',
            at,
            update_time=True,
        )
    elif now - last_progress[0] > deadline:
        progressing = condition(
            "Progressing",
            False,
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{name}" has timed out progressing.',
            at,
            update_time=True,
        )
    else:
        progressing = condition(
            "Progressing",
            True,
            "ReplicaSetUpdated",
            f'ReplicaSet "{name}" is progressing.',
            at,
            update_time=True,
        )
    has_min = available >= replicas - unavailable
    available_cond = condition(
        "Available",
        has_min,
        "MinimumReplicasAvailable" if has_min else "MinimumReplicasUnavailable",
        "Deployment has minimum availability."
        if has_min
        else "Deployment does not have minimum availability.",
        at,
        update_time=True,
    )
    old_status = d.get("status") or {}
    status: Obj = {
        "observedGeneration": d["metadata"].get("generation", 1),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": merge_conditions(old_status.get("conditions"), [available_cond, progressing]),
    }
    if replicas - available > 0:
        status["unavailableReplicas"] = replicas - available
    if status != old_status:
        if progressing["reason"] == "ProgressDeadlineExceeded" and not any(
            c.get("reason") == "ProgressDeadlineExceeded"
            for c in old_status.get("conditions") or []
        ):
            state.record_event(
                now,
                d,
                "ProgressDeadlineExceeded",
                f"Deployment {d['metadata']['name']} has timed out progressing.",
                "Warning",
                component="deployment-controller",
            )
        d["status"] = status
        state.store.touch(d)


# ----------------------------------------------------------------------------- disruption


def pdb_numbers(state: State, pdb: Obj) -> tuple[int, int, int]:
    """(expected pods, desired healthy, current healthy) as the disruption controller counts."""
    ns = pdb["metadata"]["namespace"]
    match = selector_to_matcher(pdb.get("spec", {}).get("selector"))
    pods = [
        p
        for p in state.store.items("pods", ns)
        if not is_terminating(p) and match(p["metadata"].get("labels") or {})
    ]
    expected = 0
    matched_controller = False
    for d in state.store.items("deployments", ns):
        tmpl_labels = d["spec"]["template"].get("metadata", {}).get("labels") or {}
        if match(tmpl_labels):
            expected += int(d["spec"].get("replicas", 1))
            matched_controller = True
    if not matched_controller:
        expected = len(pods)
    healthy = sum(1 for p in pods if pod_ready(p))
    spec = pdb.get("spec", {})
    if spec.get("maxUnavailable") is not None:
        desired = max(
            0, expected - _int_or_percent(spec["maxUnavailable"], expected, round_up=True)
        )
    else:
        desired = _int_or_percent(spec.get("minAvailable", 1), expected, round_up=True)
    return expected, desired, healthy


def _disruption_budgets(state: State, now: float) -> bool:
    changed = False
    for pdb in state.store.items("poddisruptionbudgets"):
        expected, desired, healthy = pdb_numbers(state, pdb)
        allowed = max(0, healthy - desired)
        at = rfc3339(now)
        cond = condition(
            "DisruptionAllowed",
            allowed > 0,
            "SufficientPods" if allowed > 0 else "InsufficientPods",
            "" if allowed > 0 else f"{healthy} healthy pods, {desired} needed",
            at,
        )
        cond["observedGeneration"] = pdb["metadata"].get("generation", 1)
        old = pdb.get("status") or {}
        status: Obj = {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": merge_conditions(old.get("conditions"), [cond]),
        }
        if status != old:
            pdb["status"] = status
            state.store.touch(pdb)
            changed = True
    return changed
