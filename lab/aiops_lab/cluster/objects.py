"""Helpers for Kubernetes objects held as plain dicts (the JSON the API returns)."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
POD_TEMPLATE_HASH = "pod-template-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MIRROR_POD = "kubernetes.io/config.mirror"

# The alphabet Kubernetes uses for generated names (no vowels, no confusable characters).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def safe_encode(data: bytes, length: int) -> str:
    digest = hashlib.sha256(data).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:length])


def meta(obj: Obj) -> Obj:
    m: Obj = obj.setdefault("metadata", {})
    return m


def labels(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("annotations") or {})


def template_without_hash(template: Obj) -> Obj:
    """The pod template as the Deployment holds it (the ReplicaSet adds pod-template-hash)."""
    tmpl = copy.deepcopy(template)
    lbls = tmpl.get("metadata", {}).get("labels")
    if lbls:
        lbls.pop(POD_TEMPLATE_HASH, None)
    return tmpl


def template_hash(template: Obj) -> str:
    canonical = json.dumps(template_without_hash(template), sort_keys=True, separators=(",", ":"))
    return safe_encode(canonical.encode(), 10)


def same_template(a: Obj, b: Obj) -> bool:
    return bool(_normalise(template_without_hash(a)) == _normalise(template_without_hash(b)))


def _normalise(value: Any) -> Any:
    """Empty maps/lists and None are the same to the apiserver's equality of templates."""
    if isinstance(value, dict):
        out = {k: _normalise(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def revision_of(obj: Obj) -> int:
    try:
        return int(annotations_of(obj).get(REVISION, "0"))
    except ValueError:
        return 0


def owner_uid(obj: Obj) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def owner_ref(obj: Obj) -> Obj:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_ready(pod: Obj) -> bool:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def is_terminating(obj: Obj) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


def node_ready(node: Obj) -> bool:
    for cond in node.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def condition(
    type_: str, status: bool, reason: str, message: str, at: str, *, update_time: bool = False
) -> Obj:
    cond: Obj = {
        "type": type_,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": at,
    }
    if update_time:
        cond["lastUpdateTime"] = at
    return cond


def merge_conditions(old: list[Obj] | None, new: list[Obj]) -> list[Obj]:
    """Keep lastTransitionTime of conditions whose status did not change (as controllers do)."""
    previous = {c.get("type"): c for c in old or []}
    merged: list[Obj] = []
    for cond in new:
        before = previous.get(cond["type"])
        if before is not None and before.get("status") == cond["status"]:
            cond = dict(cond)
            cond["lastTransitionTime"] = before.get(
                "lastTransitionTime", cond["lastTransitionTime"]
            )
            if (
                "lastUpdateTime" in cond
                and before.get("reason") == cond.get("reason")
                and before.get("message") == cond.get("message")
            ):
                cond["lastUpdateTime"] = before.get("lastUpdateTime", cond["lastUpdateTime"])
        merged.append(cond)
    return merged


def deep_copy(obj: Obj) -> Obj:
    """A copy the caller may change: stored objects never leave the store's lock by reference."""
    return copy.deepcopy(obj)
