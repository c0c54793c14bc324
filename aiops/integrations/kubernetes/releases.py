"""Releases of a Deployment: what a pod template runs, and which ReplicaSet a rollback returns to.

Pure functions over the API's JSON (no client calls), shared by the executor's rollback and the
investigation's reader, so both agree on what counts as the same release.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiops.integrations.kubernetes.errors import ActionRefusedError

Obj = dict[str, Any]

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTARTED_BY = "aiops.dev/restarted-by-incident"
ROLLED_BACK_BY = "aiops.dev/rolled-back-by-incident"
# Fingerprint of the pod template an aiops rollback rolled away from (see `release_fingerprint`).
ROLLED_BACK_FROM = "aiops.dev/rolled-back-from-release"
REVISION = "deployment.kubernetes.io/revision"
# Annotations `kubectl rollout undo` does not copy from the ReplicaSet to the Deployment.
UNDO_SKIPPED = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


def release_fingerprint(template: Obj) -> str:
    """What a pod template runs, without the stamps a restart or the ReplicaSet adds: equal
    fingerprints mean the same release, so rolling back between them changes nothing that
    matters for a fault."""
    release = normalise(template)
    metadata = release.get("metadata") or {}
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != "pod-template-hash"}
    annotations = {
        k: v
        for k, v in (metadata.get("annotations") or {}).items()
        if k not in (RESTARTED_AT, RESTARTED_BY)
    }
    release["metadata"] = {**metadata, "labels": labels, "annotations": annotations}
    canonical = json.dumps(release, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def normalise(value: Any) -> Any:
    """The value without empty fields, so that a template read back compares equal."""
    if isinstance(value, dict):
        out = {k: normalise(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def owned_revisions(deployment: Obj, replicasets: list[Obj]) -> list[tuple[int, Obj]]:
    """The Deployment's own ReplicaSets with their revision numbers, oldest first."""
    uid = deployment["metadata"]["uid"]
    owned: list[tuple[int, Obj]] = []
    for rs in replicasets:
        refs = rs["metadata"].get("ownerReferences") or []
        if not any(r.get("uid") == uid and r.get("controller") for r in refs):
            continue
        try:
            rev = int((rs["metadata"].get("annotations") or {}).get(REVISION, ""))
        except ValueError:
            continue
        owned.append((rev, rs))
    return sorted(owned, key=lambda pair: pair[0])


def revision_to_restore(
    action: str, target: str, deployment: Obj, owned: list[tuple[int, Obj]], to_revision: int | None
) -> Obj:
    """The ReplicaSet a rollback copies its template from: `to_revision`, or the previous
    release; ActionRefusedError with the reason when there is none."""
    namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
    if to_revision is not None:
        for rev, rs in owned:
            if rev == to_revision:
                return rs
        known = ", ".join(str(r) for r, _ in owned) or "none"
        raise ActionRefusedError(
            action,
            target,
            f"revision {to_revision} not found (known revisions: {known}; "
            f"see kubectl rollout history deployment/{name} -n {namespace})",
        )
    if len(owned) < 2:
        raise ActionRefusedError(
            action,
            target,
            "no previous revision to roll back to (the deployment has "
            f"{len(owned)} revision(s) in its history); escalate instead",
        )
    return previous_release(action, target, deployment, owned)


def previous_release(
    action: str, target: str, deployment: Obj, owned: list[tuple[int, Obj]]
) -> Obj:
    """The newest revision that is another release than the running one. A restart only
    stamps the template, so undoing to it would keep the release the fault came with."""
    current = release_fingerprint(deployment["spec"]["template"])
    earlier = [
        (rev, rs)
        for rev, rs in reversed(owned)
        if release_fingerprint(rs["spec"]["template"]) != current
    ]
    if not earlier:
        raise ActionRefusedError(
            action,
            target,
            f"no earlier release to roll back to (all {len(owned)} revisions run the same "
            "release and differ only by restarts); escalate instead",
        )
    rev, rs = earlier[0]
    annotations = deployment["metadata"].get("annotations") or {}
    removed = annotations.get(ROLLED_BACK_FROM)
    if removed is not None and release_fingerprint(rs["spec"]["template"]) == removed:
        by = annotations.get(ROLLED_BACK_BY, "?")
        raise ActionRefusedError(
            action,
            target,
            f"the previous release (revision {rev}) is the one aiops rolled back from for "
            f"{by}; rolling back again would re-apply it. Escalate, or pick a revision "
            "with to_revision after checking kubectl rollout history",
        )
    return rs
