"""Server-side printing (meta.k8s.io/v1 Table), so that `kubectl get` shows the columns people
expect (READY, STATUS, RESTARTS, AGE, ...) against the lab, as it does against an apiserver."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiops_lab.cluster.objects import is_terminating, node_ready, parse_rfc3339

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj, float], Any]]  # name, type, priority, cell


def human_age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 600:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 3 * 3600:
        return f"{s // 60}m"
    if s < 8 * 3600:
        return f"{s // 3600}h{(s % 3600) // 60}m"
    if s < 2 * 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _age(obj: Obj, now: float) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    return human_age(now - parse_rfc3339(created)) if created else "<unknown>"


def _pod_status(pod: Obj, now: float) -> str:
    if is_terminating(pod):
        return "Terminating"
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        for key in ("waiting", "terminated"):
            if state.get(key, {}).get("reason"):
                return str(state[key]["reason"])
    return str(pod.get("status", {}).get("phase", "Pending"))


def _pod_ready(pod: Obj, now: float) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def _restarts(pod: Obj, now: float) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    count = sum(int(c.get("restartCount", 0)) for c in statuses)
    finished = [
        c["lastState"]["terminated"]["finishedAt"]
        for c in statuses
        if (c.get("lastState") or {}).get("terminated", {}).get("finishedAt")
    ]
    if count and finished:
        return f"{count} ({human_age(now - parse_rfc3339(max(finished)))} ago)"
    return str(count)


def _node_status(node: Obj, now: float) -> str:
    status = "Ready" if node_ready(node) else "NotReady"
    if node.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _get(*path: str, default: Any = 0) -> Callable[[Obj, float], Any]:
    def cell(obj: Obj, now: float) -> Any:
        node: Any = obj
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return default if node is None else node

    return cell


def _name(obj: Obj, now: float) -> str:
    return str(obj["metadata"]["name"])


def _containers(key: str) -> Callable[[Obj, float], str]:
    def cell(obj: Obj, now: float) -> str:
        spec = obj.get("spec", {}).get("template", {}).get("spec") or {}
        return ",".join(str(c.get(key, "")) for c in spec.get("containers") or [])

    return cell


def _selector(obj: Obj, now: float) -> str:
    labels = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _involved(event: Obj, now: float) -> str:
    ref = event.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _last_seen(event: Obj, now: float) -> str:
    at = event.get("lastTimestamp") or event.get("metadata", {}).get("creationTimestamp")
    return human_age(now - parse_rfc3339(at)) if at else "<unknown>"


COLUMNS: dict[str, list[Column]] = {
    "pods": [
        ("Name", "string", 0, _name),
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        ("Restarts", "string", 0, _restarts),
        ("Age", "string", 0, _age),
        ("IP", "string", 1, _get("status", "podIP", default="<none>")),
        ("Node", "string", 1, _get("spec", "nodeName", default="<none>")),
    ],
    "deployments": [
        ("Name", "string", 0, _name),
        (
            "Ready",
            "string",
            0,
            lambda d, now: (
                f"{d.get('status', {}).get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}"
            ),
        ),
        ("Up-to-date", "integer", 0, _get("status", "updatedReplicas")),
        ("Available", "integer", 0, _get("status", "availableReplicas")),
        ("Age", "string", 0, _age),
        ("Containers", "string", 1, _containers("name")),
        ("Images", "string", 1, _containers("image")),
        ("Selector", "string", 1, _selector),
    ],
    "replicasets": [
        ("Name", "string", 0, _name),
        ("Desired", "integer", 0, _get("spec", "replicas")),
        ("Current", "integer", 0, _get("status", "replicas")),
        ("Ready", "integer", 0, _get("status", "readyReplicas")),
        ("Age", "string", 0, _age),
        ("Images", "string", 1, _containers("image")),
    ],
    "daemonsets": [
        ("Name", "string", 0, _name),
        ("Desired", "integer", 0, _get("status", "desiredNumberScheduled")),
        ("Current", "integer", 0, _get("status", "currentNumberScheduled")),
        ("Ready", "integer", 0, _get("status", "numberReady")),
        ("Up-to-date", "integer", 0, _get("status", "updatedNumberScheduled")),
        ("Available", "integer", 0, _get("status", "numberAvailable")),
        ("Age", "string", 0, _age),
    ],
    "nodes": [
        ("Name", "string", 0, _name),
        ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, lambda n, now: "<none>"),
        ("Age", "string", 0, _age),
        ("Version", "string", 0, _get("status", "nodeInfo", "kubeletVersion", default="")),
    ],
    "namespaces": [
        ("Name", "string", 0, _name),
        ("Status", "string", 0, _get("status", "phase", default="Active")),
        ("Age", "string", 0, _age),
    ],
    "events": [
        ("Last Seen", "string", 0, _last_seen),
        ("Type", "string", 0, _get("type", default="")),
        ("Reason", "string", 0, _get("reason", default="")),
        ("Object", "string", 0, _involved),
        ("Message", "string", 0, _get("message", default="")),
    ],
    "poddisruptionbudgets": [
        ("Name", "string", 0, _name),
        ("Min Available", "string", 0, _get("spec", "minAvailable", default="N/A")),
        ("Max Unavailable", "string", 0, _get("spec", "maxUnavailable", default="N/A")),
        ("Allowed Disruptions", "integer", 0, _get("status", "disruptionsAllowed")),
        ("Age", "string", 0, _age),
    ],
}


def wants_table(accept: str | None) -> bool:
    return bool(accept) and "as=Table" in (accept or "")


def table(
    plural: str,
    items: list[Obj],
    list_meta: Obj,
    include_object: str | None = None,
    now: float | None = None,
) -> Obj:
    """A Table of `items` (include_object: None | Metadata (default) | Object, as the API);
    ages are counted to `now` (the cluster's clock)."""
    now = time.time() if now is None else now
    columns = COLUMNS.get(plural) or [("Name", "string", 0, _name), ("Age", "string", 0, _age)]
    rows: list[Obj] = []
    for obj in items:
        row: Obj = {"cells": [cell(obj, now) for _, _, _, cell in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {}),
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {
                "name": name,
                "type": type_,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": priority,
            }
            for name, type_, priority, _ in columns
        ],
        "rows": rows,
    }
