"""Deployment actions: rollout restart, scale, rollout undo, and waiting for a rollout.

Idempotent under retry (Temporal activities run at least once):
- `rollout_restart` and `rollout_undo` are keyed by an action key (the incident's workflow id and
  run id) in an annotation, so a retry with the same key changes nothing (a second undo does not
  flip back), while a later incident on the same workload acts again;
- `rollout_undo` skips revisions that differ from the current one only by a restart, and refuses
  to return to a release an earlier aiops rollback removed (recorded in an annotation), so two
  rollbacks in a row never re-apply the bad release;
- `scale` scales *to* N.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiops.domain import StepResult
from aiops.integrations.kubernetes.client import JSON_PATCH, MERGE, STRATEGIC, KubeClient, Obj
from aiops.integrations.kubernetes.diff import FieldChange, diff, show
from aiops.integrations.kubernetes.errors import ActionRefusedError, InvalidStepError
from aiops.integrations.kubernetes.releases import (
    RESTARTED_AT,
    RESTARTED_BY,
    REVISION,
    ROLLED_BACK_BY,
    ROLLED_BACK_FROM,
    UNDO_SKIPPED,
    normalise,
    owned_revisions,
    release_fingerprint,
    revision_to_restore,
)


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _template_annotations(deployment: Obj) -> dict[str, Any]:
    return (deployment["spec"]["template"].get("metadata") or {}).get("annotations") or {}


class DeploymentActions(KubeClient):
    def rollout_restart(
        self, namespace: str, name: str, incident_id: str, *, dry_run: bool = False
    ) -> StepResult:
        """`kubectl rollout restart`, once per incident id."""
        action, target = "k8s.rollout_restart", f"Deployment/{namespace}/{name}"
        _require(action, target, incident_id=incident_id)

        def attempt() -> StepResult:
            d = self._read_deployment(action, target, namespace, name)
            stamps = _template_annotations(d)
            if stamps.get(RESTARTED_BY) == incident_id:
                return self._nothing_to_do(
                    action,
                    target,
                    dry_run,
                    f"Deployment {namespace}/{name}: already restarted for incident "
                    f"{incident_id} (at {stamps.get(RESTARTED_AT, '?')}); nothing to do",
                )
            _refuse_paused(action, target, d, "")
            patch = {
                "metadata": {"resourceVersion": d["metadata"]["resourceVersion"]},
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {RESTARTED_AT: _now_rfc3339(), RESTARTED_BY: incident_id}
                        }
                    }
                },
            }
            after = self._patch(action, target, dry_run, d, patch, STRATEGIC)
            changes = diff(
                stamps, _template_annotations(after), "spec.template.metadata.annotations"
            )
            replicas = d["spec"].get("replicas", 1)
            return self._done(
                action,
                target,
                dry_run,
                f"Deployment {namespace}/{name}: rollout restart",
                changes,
                [f"pods replaced: {replicas} (rolling update, new ReplicaSet)"],
            )

        return self._with_conflict_retry(action, target, attempt)

    def scale(
        self, namespace: str, name: str, replicas: int, *, dry_run: bool = False
    ) -> StepResult:
        """Scale *to* `replicas` through the scale subresource."""
        action, target = "k8s.scale", f"Deployment/{namespace}/{name}"
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise InvalidStepError(
                action, target, f"replicas must be a whole number ≥ 0, got {replicas!r}"
            )
        scale = self._call(
            action, target, self.apps.read_namespaced_deployment_scale, name, namespace
        )
        before = int(scale.spec.replicas or 0) if scale.spec else 0
        if before == replicas:
            return self._nothing_to_do(
                action,
                target,
                dry_run,
                f"Deployment {namespace}/{name}: already at {replicas} replicas; nothing to do",
            )
        after = self._write(
            action,
            target,
            dry_run,
            self.apps.patch_namespaced_deployment_scale,
            name,
            namespace,
            {"spec": {"replicas": replicas}},
            _content_type=MERGE,
        )
        now = int(after.spec.replicas or 0) if after.spec else 0
        return self._done(
            action,
            target,
            dry_run,
            f"Deployment {namespace}/{name}: scale",
            [FieldChange("spec.replicas", str(before), str(now))],
        )

    def rollout_undo(
        self,
        namespace: str,
        name: str,
        incident_id: str,
        *,
        to_revision: int | None = None,
        dry_run: bool = False,
    ) -> StepResult:
        """`kubectl rollout undo`: copy the previous (or `to_revision`) ReplicaSet's pod template
        back into the Deployment, which makes it the newest revision. Once per incident id."""
        action, target = "k8s.rollout_undo", f"Deployment/{namespace}/{name}"
        _require(action, target, incident_id=incident_id)

        def attempt() -> StepResult:
            d = self._read_deployment(action, target, namespace, name)
            ann = d["metadata"].get("annotations") or {}
            if ann.get(ROLLED_BACK_BY) == incident_id:
                return self._nothing_to_do(
                    action,
                    target,
                    dry_run,
                    f"Deployment {namespace}/{name}: already rolled back for incident "
                    f"{incident_id} (now at revision {ann.get(REVISION, '?')}); nothing to do",
                )
            _refuse_paused(action, target, d, " before rolling back")
            rs = revision_to_restore(
                action, target, d, self._replicasets(action, target, d), to_revision
            )
            template = rs["spec"]["template"]
            labels = (template.get("metadata") or {}).get("labels") or {}
            labels.pop("pod-template-hash", None)
            rs_rev = (rs["metadata"].get("annotations") or {}).get(REVISION, "?")
            if normalise(template) == normalise(d["spec"]["template"]):
                return self._nothing_to_do(
                    action,
                    target,
                    dry_run,
                    f"Deployment {namespace}/{name}: skipped rollback (the current template "
                    f"already matches revision {rs_rev})",
                )
            new_ann = dict(ann)
            for key, value in (rs["metadata"].get("annotations") or {}).items():
                if key not in UNDO_SKIPPED:
                    new_ann[key] = value
            new_ann[ROLLED_BACK_BY] = incident_id
            new_ann[ROLLED_BACK_FROM] = release_fingerprint(d["spec"]["template"])
            patch = [
                # Setting the resourceVersion makes the apiserver refuse (409) a stale write.
                {
                    "op": "replace",
                    "path": "/metadata/resourceVersion",
                    "value": d["metadata"]["resourceVersion"],
                },
                {"op": "replace", "path": "/spec/template", "value": template},
                {
                    "op": "replace" if "annotations" in d["metadata"] else "add",
                    "path": "/metadata/annotations",
                    "value": new_ann,
                },
            ]
            after = self._patch(action, target, dry_run, d, patch, JSON_PATCH)
            return self._done(
                action,
                target,
                dry_run,
                f"Deployment {namespace}/{name}: rollback from revision "
                f"{ann.get(REVISION, '?')} to the template of revision {rs_rev}",
                diff(d["spec"]["template"], after["spec"]["template"], "spec.template"),
                [
                    f"metadata.annotations[{ROLLED_BACK_BY}]: "
                    f"{show(ann.get(ROLLED_BACK_BY))} → {incident_id}"
                ],
            )

        return self._with_conflict_retry(action, target, attempt)

    def _patch(
        self, action: str, target: str, dry_run: bool, d: Obj, patch: Any, content_type: str
    ) -> Obj:
        """Patch Deployment `d`; the object as it is (or, in a dry run, would be) after."""
        meta = d["metadata"]
        return self._dict(
            self._write(
                action,
                target,
                dry_run,
                self.apps.patch_namespaced_deployment,
                meta["name"],
                meta["namespace"],
                patch,
                _content_type=content_type,
            )
        )

    def _read_deployment(self, action: str, target: str, namespace: str, name: str) -> Obj:
        return self._dict(
            self._call(action, target, self.apps.read_namespaced_deployment, name, namespace)
        )

    def _replicasets(self, action: str, target: str, d: Obj) -> list[tuple[int, Obj]]:
        match = (d["spec"].get("selector") or {}).get("matchLabels") or {}
        listed = self._call(
            action,
            target,
            self.apps.list_namespaced_replica_set,
            d["metadata"]["namespace"],
            label_selector=",".join(f"{k}={v}" for k, v in sorted(match.items())),
        )
        return owned_revisions(d, [self._dict(item) for item in listed.items])

    def rollout_progress(self, namespace: str, name: str) -> tuple[bool, str]:
        """(done, what kubectl rollout status would say), by kubectl's own rules."""
        action, target = "k8s.rollout_status", f"Deployment/{namespace}/{name}"
        d = self._call(action, target, self.apps.read_namespaced_deployment, name, namespace)
        spec, status, meta = d.spec, d.status, d.metadata
        want = int(spec.replicas if spec and spec.replicas is not None else 1)
        if (
            status is None
            or meta is None
            or (status.observed_generation or 0) < (meta.generation or 0)
        ):
            return False, "waiting for the deployment spec update to be observed"
        for cond in status.conditions or []:
            if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
                return False, f'deployment "{name}" exceeded its progress deadline'
        updated = status.updated_replicas or 0
        if updated < want:
            return False, f"{updated} out of {want} new replicas have been updated"
        if (status.replicas or 0) > updated:
            return False, f"{(status.replicas or 0) - updated} old replicas are pending termination"
        if (status.available_replicas or 0) < updated:
            return (
                False,
                f"{status.available_replicas or 0} of {updated} updated replicas are available",
            )
        return True, f'deployment "{name}" successfully rolled out'

    def wait_for_rollout(self, namespace: str, name: str, timeout_s: float = 300.0) -> StepResult:
        """Wait until the rollout completes (read-only, so that verification starts after it);
        ok=False with kubectl's last status line when it does not within `timeout_s`."""
        timeout_s = self._wait_limit(timeout_s)
        deadline = self._monotonic() + timeout_s
        while True:
            done, message = self.rollout_progress(namespace, name)
            if done or self._monotonic() >= deadline:
                return StepResult(
                    action="k8s.rollout_status",
                    target=f"Deployment/{namespace}/{name}",
                    ok=done,
                    changed=False,
                    message=message if done else f"not done after {timeout_s:.0f}s: {message}",
                )
            self._waiting(f"rollout {namespace}/{name}: {message}")
            self._sleep(self.poll_interval_s)


def _refuse_paused(action: str, target: str, d: Obj, when: str) -> None:
    if d["spec"].get("paused"):
        namespace, name = d["metadata"]["namespace"], d["metadata"]["name"]
        raise ActionRefusedError(
            action,
            target,
            f"the rollout is paused; resume it{when or ' first'} "
            f"(kubectl rollout resume deployment/{name} -n {namespace})",
        )


def _require(action: str, target: str, **values: Any) -> None:
    for key, value in values.items():
        if value in (None, ""):
            raise InvalidStepError(action, target, f"{key} is required")
