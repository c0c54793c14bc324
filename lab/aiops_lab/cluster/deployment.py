"""The Deployment controller: a ReplicaSet per pod template, revision numbers (a restored
template reuses its old ReplicaSet as the newest revision, as `kubectl rollout undo` expects),
rolling updates within maxSurge/maxUnavailable, history pruning, status and conditions."""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from typing import Any

from aiops_lab.cluster.objects import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    POD_TEMPLATE_HASH,
    REVISION,
    REVISION_HISTORY,
    Obj,
    annotations_of,
    condition,
    merge_conditions,
    owner_ref,
    owner_uid,
    revision_of,
    rfc3339,
    same_template,
    template_hash,
    template_without_hash,
)
from aiops_lab.cluster.state import State


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        fraction = float(value[:-1]) / 100.0 * total
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(value)


def surge_and_unavailable(deployment: Obj) -> tuple[int, int]:
    replicas = int(deployment["spec"].get("replicas", 1))
    rolling = (deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    surge = int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
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


def sync_deployments(state: State, now: float) -> bool:
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
