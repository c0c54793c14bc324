"""The Kubernetes executor: the allow-listed actions, through the official client, against any
kubeconfig (a real cluster or the lab API).

Every action is idempotent under retry, as Temporal activities run at least once:
- `rollout_restart` and `rollout_undo` are keyed by an action key (the incident's workflow id and
  run id) in an annotation, so a retry with the same key changes nothing (a second undo does not
  flip back), while a later incident on the same workload acts again;
- `rollout_undo` skips revisions that differ from the current one only by a restart, and refuses
  to return to a release an earlier aiops rollback removed (recorded in an annotation), so two
  rollbacks in a row never re-apply the bad release;
- `scale` scales *to* N; `cordon` sets a flag; `delete_pod` and `drain` find nothing left to do.
Every action takes `dry_run=True`, which asks the API server to run it without persisting
(`dryRun=All`), and every result's message is a human-readable diff (before → after of the fields
touched) for the approval request.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import kubernetes.client as k8s
import kubernetes.config
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from aiops.domain import Step, StepResult
from aiops.integrations.kube_diff import FieldChange, diff, render, show
from aiops.integrations.kube_errors import (
    ActionRefusedError,
    ConflictError,
    DrainTimeoutError,
    InvalidStepError,
    KubeActionError,
    KubeApiError,
    KubeUnavailableError,
    PermissionDeniedError,
    TargetNotFoundError,
    status_message,
)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTARTED_BY = "aiops.dev/restarted-by-incident"
ROLLED_BACK_BY = "aiops.dev/rolled-back-by-incident"
# Fingerprint of the pod template an aiops rollback rolled away from (see `release_fingerprint`).
ROLLED_BACK_FROM = "aiops.dev/rolled-back-from-release"
REVISION = "deployment.kubernetes.io/revision"
MIRROR_POD = "kubernetes.io/config.mirror"
# Annotations `kubectl rollout undo` does not copy from the ReplicaSet to the Deployment.
_UNDO_SKIPPED = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"

T = TypeVar("T")
Obj = dict[str, Any]

__all__ = [
    "ACTIONS",
    "KubernetesExecutor",
]


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubernetesExecutor:
    """Runs the `k8s.*` actions. Construct with an ApiClient, or `from_kubeconfig()`."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        field_manager: str = "aiops",
        drain_timeout_s: float = 120.0,
        poll_interval_s: float = 0.5,
        conflict_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        """`on_wait` is called with a progress line whenever a drain waits (pass a Temporal
        activity's heartbeat so that long drains are not timed out)."""
        self.api_client = api_client
        self.core = k8s.CoreV1Api(api_client)
        self.apps = k8s.AppsV1Api(api_client)
        self.field_manager = field_manager
        self.drain_timeout_s = drain_timeout_s
        self.poll_interval_s = poll_interval_s
        self.conflict_retries = conflict_retries
        self._sleep = sleep
        self._monotonic = monotonic
        self.on_wait = on_wait

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, **kwargs: Any
    ) -> KubernetesExecutor:
        """From a kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."""
        return cls(
            kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context
            ),
            **kwargs,
        )

    @classmethod
    def in_cluster(cls, **kwargs: Any) -> KubernetesExecutor:
        """From the pod's service account (when aiops runs inside the cluster)."""
        configuration = k8s.Configuration()
        kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
        return cls(k8s.ApiClient(configuration), **kwargs)

    # ------------------------------------------------------------------ plumbing

    def _dict(self, model: Any) -> Obj:
        data = self.api_client.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
        return data if isinstance(data, dict) else {}

    def _call(self, action: str, target: str, fn: Callable[[], T]) -> T:
        """Call the API, turning its failures into typed errors with actionable messages."""
        try:
            return fn()
        except ApiException as exc:
            raise _api_error(action, target, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnavailableError(
                action,
                target,
                f"cannot reach the Kubernetes API ({exc}); check the kubeconfig's server address "
                "and that the API server is up, then retry",
            ) from exc

    def _dry(self, dry_run: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"field_manager": self.field_manager}
        if dry_run:
            kwargs["dry_run"] = "All"
        return kwargs

    def _result(
        self, action: str, target: str, changed: bool, message: str, dry_run: bool
    ) -> StepResult:
        return StepResult(
            action=action,
            target=target,
            ok=True,
            changed=changed,
            message=message,
            dry_run=dry_run,
        )

    def _with_conflict_retry(self, action: str, target: str, attempt: Callable[[], T]) -> T:
        for _ in range(self.conflict_retries):
            try:
                return attempt()
            except ConflictError:
                self._sleep(min(self.poll_interval_s, 0.2))
        raise ConflictError(
            action,
            target,
            f"the object kept changing during {self.conflict_retries} attempts; retry the step",
        )

    # ------------------------------------------------------------------ deployments

    def rollout_restart(
        self, namespace: str, name: str, incident_id: str, *, dry_run: bool = False
    ) -> StepResult:
        """`kubectl rollout restart`, once per incident id."""
        action, target = "k8s.rollout_restart", f"Deployment/{namespace}/{name}"
        _require(action, target, incident_id=incident_id)

        def attempt() -> StepResult:
            d = self._dict(
                self._call(
                    action, target, lambda: self.apps.read_namespaced_deployment(name, namespace)
                )
            )
            tmpl_ann = (d["spec"]["template"].get("metadata") or {}).get("annotations") or {}
            if tmpl_ann.get(RESTARTED_BY) == incident_id:
                return self._result(
                    action,
                    target,
                    False,
                    render(
                        f"Deployment {namespace}/{name}: already restarted for incident "
                        f"{incident_id} (at {tmpl_ann.get(RESTARTED_AT, '?')}); nothing to do",
                        [],
                    ),
                    dry_run,
                )
            if d["spec"].get("paused"):
                raise ActionRefusedError(
                    action,
                    target,
                    "the rollout is paused; resume it first "
                    f"(kubectl rollout resume deployment/{name} -n {namespace})",
                )
            patch = {
                "metadata": {"resourceVersion": d["metadata"]["resourceVersion"]},
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {
                                RESTARTED_AT: _now_rfc3339(),
                                RESTARTED_BY: incident_id,
                            }
                        }
                    }
                },
            }
            after = self._dict(
                self._call(
                    action,
                    target,
                    lambda: self.apps.patch_namespaced_deployment(
                        name, namespace, patch, _content_type=STRATEGIC, **self._dry(dry_run)
                    ),
                )
            )
            changes = diff(
                d["spec"]["template"].get("metadata", {}).get("annotations"),
                after["spec"]["template"].get("metadata", {}).get("annotations"),
                "spec.template.metadata.annotations",
            )
            replicas = d["spec"].get("replicas", 1)
            return self._result(
                action,
                target,
                True,
                render(
                    f"Deployment {namespace}/{name}: rollout restart"
                    + (" (dry run)" if dry_run else ""),
                    changes,
                    [f"pods replaced: {replicas} (rolling update, new ReplicaSet)"],
                ),
                dry_run,
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
            action, target, lambda: self.apps.read_namespaced_deployment_scale(name, namespace)
        )
        before = int(scale.spec.replicas or 0) if scale.spec else 0
        if before == replicas:
            return self._result(
                action,
                target,
                False,
                render(
                    f"Deployment {namespace}/{name}: already at {replicas} replicas; nothing to do",
                    [],
                ),
                dry_run,
            )
        after = self._call(
            action,
            target,
            lambda: self.apps.patch_namespaced_deployment_scale(
                name,
                namespace,
                {"spec": {"replicas": replicas}},
                _content_type=MERGE,
                **self._dry(dry_run),
            ),
        )
        now = int(after.spec.replicas or 0) if after.spec else 0
        return self._result(
            action,
            target,
            True,
            render(
                f"Deployment {namespace}/{name}: scale" + (" (dry run)" if dry_run else ""),
                [FieldChange("spec.replicas", str(before), str(now))],
            ),
            dry_run,
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
            d = self._dict(
                self._call(
                    action, target, lambda: self.apps.read_namespaced_deployment(name, namespace)
                )
            )
            ann = d["metadata"].get("annotations") or {}
            if ann.get(ROLLED_BACK_BY) == incident_id:
                return self._result(
                    action,
                    target,
                    False,
                    render(
                        f"Deployment {namespace}/{name}: already rolled back for incident "
                        f"{incident_id} (now at revision {ann.get(REVISION, '?')}); nothing to do",
                        [],
                    ),
                    dry_run,
                )
            if d["spec"].get("paused"):
                raise ActionRefusedError(
                    action,
                    target,
                    "the rollout is paused; resume it before rolling back "
                    f"(kubectl rollout resume deployment/{name} -n {namespace})",
                )
            rs = self._revision_to_restore(action, target, d, to_revision)
            template = rs["spec"]["template"]
            labels = (template.get("metadata") or {}).get("labels") or {}
            labels.pop("pod-template-hash", None)
            rs_rev = (rs["metadata"].get("annotations") or {}).get(REVISION, "?")
            if _normalise(template) == _normalise(d["spec"]["template"]):
                return self._result(
                    action,
                    target,
                    False,
                    render(
                        f"Deployment {namespace}/{name}: skipped rollback (the current template "
                        f"already matches revision {rs_rev})",
                        [],
                    ),
                    dry_run,
                )
            new_ann = dict(ann)
            for key, value in (rs["metadata"].get("annotations") or {}).items():
                if key not in _UNDO_SKIPPED:
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
            after = self._dict(
                self._call(
                    action,
                    target,
                    lambda: self.apps.patch_namespaced_deployment(
                        name, namespace, patch, _content_type=JSON_PATCH, **self._dry(dry_run)
                    ),
                )
            )
            changes = diff(d["spec"]["template"], after["spec"]["template"], "spec.template")
            current_rev = ann.get(REVISION, "?")
            return self._result(
                action,
                target,
                True,
                render(
                    f"Deployment {namespace}/{name}: rollback from revision {current_rev} to the "
                    f"template of revision {rs_rev}" + (" (dry run)" if dry_run else ""),
                    changes,
                    [
                        f"metadata.annotations[{ROLLED_BACK_BY}]: "
                        f"{show(ann.get(ROLLED_BACK_BY))} → {incident_id}"
                    ],
                ),
                dry_run,
            )

        return self._with_conflict_retry(action, target, attempt)

    def _revision_to_restore(
        self, action: str, target: str, d: Obj, to_revision: int | None
    ) -> Obj:
        namespace, name = d["metadata"]["namespace"], d["metadata"]["name"]
        match = (d["spec"].get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        listed = self._call(
            action,
            target,
            lambda: self.apps.list_namespaced_replica_set(namespace, label_selector=selector),
        )
        uid = d["metadata"]["uid"]
        owned: list[tuple[int, Obj]] = []
        for item in listed.items:
            rs = self._dict(item)
            refs = rs["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == uid and r.get("controller") for r in refs):
                continue
            try:
                rev = int((rs["metadata"].get("annotations") or {}).get(REVISION, ""))
            except ValueError:
                continue
            owned.append((rev, rs))
        owned.sort(key=lambda pair: pair[0])
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
        return self._previous_release(action, target, d, owned)

    @staticmethod
    def _previous_release(action: str, target: str, d: Obj, owned: list[tuple[int, Obj]]) -> Obj:
        """The newest revision that is another release than the running one. A restart only
        stamps the template, so undoing to it would keep the release the fault came with."""
        current = release_fingerprint(d["spec"]["template"])
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
        removed = (d["metadata"].get("annotations") or {}).get(ROLLED_BACK_FROM)
        if removed is not None and release_fingerprint(rs["spec"]["template"]) == removed:
            by = (d["metadata"].get("annotations") or {}).get(ROLLED_BACK_BY, "?")
            raise ActionRefusedError(
                action,
                target,
                f"the previous release (revision {rev}) is the one aiops rolled back from for "
                f"{by}; rolling back again would re-apply it. Escalate, or pick a revision "
                "with to_revision after checking kubectl rollout history",
            )
        return rs

    def rollout_progress(self, namespace: str, name: str) -> tuple[bool, str]:
        """(done, what kubectl rollout status would say), by kubectl's own rules."""
        action, target = "k8s.rollout_status", f"Deployment/{namespace}/{name}"
        d = self._call(
            action, target, lambda: self.apps.read_namespaced_deployment(name, namespace)
        )
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

    # ------------------------------------------------------------------ pods

    def delete_pod(
        self,
        namespace: str,
        name: str,
        *,
        dry_run: bool = False,
        grace_period_seconds: int | None = None,
    ) -> StepResult:
        """Delete one pod (its controller replaces it). Gone or terminating already: no change."""
        action, target = "k8s.delete_pod", f"Pod/{namespace}/{name}"
        try:
            pod = self._dict(
                self._call(action, target, lambda: self.core.read_namespaced_pod(name, namespace))
            )
        except TargetNotFoundError:
            return self._result(
                action,
                target,
                False,
                render(f"Pod {namespace}/{name}: already gone; nothing to do", []),
                dry_run,
            )
        if pod["metadata"].get("deletionTimestamp"):
            return self._result(
                action,
                target,
                False,
                render(f"Pod {namespace}/{name}: already terminating; nothing to do", []),
                dry_run,
            )
        owner = next(
            (r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None
        )
        kwargs: dict[str, Any] = {}
        if dry_run:
            kwargs["dry_run"] = "All"
        if grace_period_seconds is not None:
            kwargs["grace_period_seconds"] = grace_period_seconds
        try:
            self._call(
                action, target, lambda: self.core.delete_namespaced_pod(name, namespace, **kwargs)
            )
        except TargetNotFoundError:
            return self._result(
                action,
                target,
                False,
                render(f"Pod {namespace}/{name}: already gone; nothing to do", []),
                dry_run,
            )
        status = pod.get("status") or {}
        node = (pod.get("spec") or {}).get("nodeName") or "no node"
        note = (
            f"its {owner['kind']} {owner['name']} creates a replacement"
            if owner
            else "WARNING: no controller owns it, so nothing will recreate it"
        )
        return self._result(
            action,
            target,
            True,
            render(
                f"Pod {namespace}/{name}: delete" + (" (dry run)" if dry_run else ""),
                [FieldChange("pod", f"{status.get('phase', '?')} on {node}", "deleted")],
                [note],
            ),
            dry_run,
        )

    # ------------------------------------------------------------------ nodes

    def cordon(self, node: str, *, dry_run: bool = False) -> StepResult:
        return self._set_unschedulable("k8s.cordon", node, True, dry_run)

    def uncordon(self, node: str, *, dry_run: bool = False) -> StepResult:
        return self._set_unschedulable("k8s.uncordon", node, False, dry_run)

    def _set_unschedulable(self, action: str, node: str, value: bool, dry_run: bool) -> StepResult:
        target = f"Node/{node}"
        obj = self._call(action, target, lambda: self.core.read_node(node))
        before = bool(obj.spec.unschedulable) if obj.spec else False
        verb = "cordon" if value else "uncordon"
        if before == value:
            return self._result(
                action,
                target,
                False,
                render(f"Node {node}: already {verb}ed; nothing to do", []),
                dry_run,
            )
        self._call(
            action,
            target,
            lambda: self.core.patch_node(
                node,
                {"spec": {"unschedulable": value or None}},
                _content_type=STRATEGIC,
                **self._dry(dry_run),
            ),
        )
        return self._result(
            action,
            target,
            True,
            render(
                f"Node {node}: {verb}" + (" (dry run)" if dry_run else ""),
                [FieldChange("spec.unschedulable", show(before), show(value))],
            ),
            dry_run,
        )

    def drain(
        self,
        node: str,
        *,
        dry_run: bool = False,
        timeout_s: float | None = None,
        force: bool = False,
    ) -> StepResult:
        """`kubectl drain`: cordon, then evict every pod on the node through the eviction API
        (PodDisruptionBudgets respected: a 429 is retried until `timeout_s`), skipping DaemonSet
        and mirror pods, and wait until the evicted pods are gone. Pods no controller owns are
        refused unless `force` (nothing would recreate them)."""
        action, target = "k8s.drain", f"Node/{node}"
        timeout = self.drain_timeout_s if timeout_s is None else timeout_s
        cordon = self._set_unschedulable(action, node, True, dry_run)
        to_evict, skipped, unmanaged = self._pods_to_evict(action, target, node)
        if unmanaged and not force:
            raise ActionRefusedError(
                action,
                target,
                "cannot evict pods that no controller owns (nothing would "
                f"recreate them): {', '.join(unmanaged)}; move them yourself or drain with force",
            )
        to_evict += unmanaged
        notes = [f"skip {s}" for s in skipped]
        cordon_changes = (
            [FieldChange("spec.unschedulable", "false", "true")] if cordon.changed else []
        )
        if dry_run:
            blocked = []
            for ref in to_evict:
                reason = self._evict(action, target, ref, dry_run=True)
                if reason:
                    blocked.append(f"{ref} (now blocked: {reason}; a drain waits for it)")
            evict_changes = [FieldChange(f"pod {ref}", f"on {node}", "evicted") for ref in to_evict]
            return self._result(
                action,
                target,
                cordon.changed or bool(to_evict),
                render(
                    f"Node {node}: drain (dry run)",
                    cordon_changes + evict_changes,
                    notes + [f"wait: {b}" for b in blocked],
                ),
                True,
            )
        evicted = self._evict_all(action, target, node, to_evict, timeout)
        changes = cordon_changes + [
            FieldChange(f"pod {ref}", f"on {node}", "evicted") for ref in evicted
        ]
        if not changes:
            return self._result(
                action,
                target,
                False,
                render(
                    f"Node {node}: already drained (cordoned, no pods to evict); nothing to do",
                    [],
                    notes,
                ),
                False,
            )
        return self._result(
            action, target, True, render(f"Node {node}: drain", changes, notes), False
        )

    def _pods_to_evict(
        self, action: str, target: str, node: str
    ) -> tuple[list[str], list[str], list[str]]:
        pods = self._call(
            action,
            target,
            lambda: self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}"),
        )
        to_evict: list[str] = []
        skipped: list[str] = []
        unmanaged: list[str] = []
        for item in pods.items:
            pod = self._dict(item)
            m = pod["metadata"]
            ref = f"{m['namespace']}/{m['name']}"
            if m.get("deletionTimestamp"):
                continue
            owner = next((r for r in m.get("ownerReferences") or [] if r.get("controller")), None)
            if MIRROR_POD in (m.get("annotations") or {}):
                skipped.append(f"{ref} (mirror pod)")
            elif owner is not None and owner.get("kind") == "DaemonSet":
                skipped.append(f"{ref} (DaemonSet)")
            elif (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                to_evict.append(ref)
            elif owner is None:
                unmanaged.append(ref)
            else:
                to_evict.append(ref)
        return to_evict, skipped, unmanaged

    def _evict(self, action: str, target: str, ref: str, *, dry_run: bool) -> str | None:
        """Evict one pod; returns None when evicted (or gone), else why it must wait (429)."""
        namespace, name = ref.split("/", 1)
        body = k8s.V1Eviction(
            metadata=k8s.V1ObjectMeta(name=name, namespace=namespace),
            delete_options=k8s.V1DeleteOptions(dry_run=["All"]) if dry_run else None,
        )
        try:
            self.core.create_namespaced_pod_eviction(
                name, namespace, body, dry_run="All" if dry_run else None
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 429:
                return status_message(exc.body) + _cause(exc.body)
            raise _api_error(action, target, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnavailableError(
                action, target, f"cannot reach the Kubernetes API ({exc})"
            ) from exc
        return None

    def _evict_all(
        self, action: str, target: str, node: str, pods: list[str], timeout: float
    ) -> list[str]:
        deadline = self._monotonic() + timeout
        pending = list(pods)
        evicted: list[str] = []
        reasons: dict[str, str] = {}
        while pending:
            still: list[str] = []
            for ref in pending:
                reason = self._evict(action, target, ref, dry_run=False)
                if reason is None:
                    evicted.append(ref)
                else:
                    reasons[ref] = reason
                    still.append(ref)
            pending = still
            if not pending:
                break
            if self._monotonic() >= deadline:
                detail = "; ".join(f"{r}: {reasons[r]}" for r in pending)
                raise DrainTimeoutError(
                    action,
                    target,
                    f"{len(pending)} pod(s) not evicted within {timeout:.0f}s "
                    f"({detail}); the node stays cordoned. Wait for the budget to allow it or "
                    "scale the workload up, then retry",
                    pending,
                )
            self._waiting(f"drain {node}: {len(pending)} pod(s) wait for a disruption budget")
            self._sleep(self.poll_interval_s)
        # kubectl drain waits until the evicted pods are really gone from the node.
        while evicted:
            left = self._still_on_node(action, target, node, set(evicted))
            if not left:
                break
            if self._monotonic() >= deadline:
                raise DrainTimeoutError(
                    action,
                    target,
                    f"evicted pods still terminating after {timeout:.0f}s: "
                    f"{', '.join(sorted(left))}; retry the step to wait longer",
                    sorted(left),
                )
            self._waiting(f"drain {node}: {len(left)} evicted pod(s) still terminating")
            self._sleep(self.poll_interval_s)
        return evicted

    def _waiting(self, message: str) -> None:
        if self.on_wait is not None:
            self.on_wait(message)

    def _still_on_node(self, action: str, target: str, node: str, refs: set[str]) -> set[str]:
        pods = self._call(
            action,
            target,
            lambda: self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}"),
        )
        present = {f"{p.metadata.namespace}/{p.metadata.name}" for p in pods.items if p.metadata}
        return refs & present

    # ------------------------------------------------------------------ steps

    def execute(self, step: Step, *, incident_id: str, dry_run: bool = False) -> StepResult:
        """Run one playbook step (`k8s.*` action with its rendered arguments)."""
        handler = ACTIONS.get(step.action)
        if handler is None:
            raise InvalidStepError(
                step.action, step.target, f"unknown action; allowed: {', '.join(sorted(ACTIONS))}"
            )
        return handler(self, step.args, incident_id, dry_run)

    def preview(self, steps: list[Step], *, incident_id: str) -> list[str]:
        """Server-side dry runs of the steps: the diffs to show in an approval request."""
        return [self.execute(s, incident_id=incident_id, dry_run=True).message for s in steps]


def _require(action: str, target: str, **values: Any) -> None:
    for key, value in values.items():
        if value in (None, ""):
            raise InvalidStepError(action, target, f"{key} is required")


def _arg(action: str, args: dict[str, Any], *names: str, kind: type = str) -> Any:
    for name in names:
        if args.get(name) not in (None, ""):
            value = args[name]
            if kind is int and isinstance(value, str) and value.isdigit():
                value = int(value)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
                raise InvalidStepError(
                    action, str(args), f"argument {name!r} must be a {kind.__name__}, got {value!r}"
                )
            return value
    raise InvalidStepError(action, str(args), f"missing argument {' or '.join(map(repr, names))}")


def _optional(action: str, args: dict[str, Any], name: str, kind: type) -> Any:
    if args.get(name) in (None, ""):
        return None
    return _arg(action, args, name, kind=kind)


Handler = Callable[[KubernetesExecutor, dict[str, Any], str, bool], StepResult]

ACTIONS: dict[str, Handler] = {
    "k8s.rollout_restart": lambda ex, a, inc, dry: ex.rollout_restart(
        _arg("k8s.rollout_restart", a, "namespace"),
        _arg("k8s.rollout_restart", a, "name"),
        inc,
        dry_run=dry,
    ),
    "k8s.scale": lambda ex, a, inc, dry: ex.scale(
        _arg("k8s.scale", a, "namespace"),
        _arg("k8s.scale", a, "name"),
        _arg("k8s.scale", a, "replicas", kind=int),
        dry_run=dry,
    ),
    "k8s.rollout_undo": lambda ex, a, inc, dry: ex.rollout_undo(
        _arg("k8s.rollout_undo", a, "namespace"),
        _arg("k8s.rollout_undo", a, "name"),
        inc,
        to_revision=_optional("k8s.rollout_undo", a, "to_revision", int),
        dry_run=dry,
    ),
    "k8s.delete_pod": lambda ex, a, inc, dry: ex.delete_pod(
        _arg("k8s.delete_pod", a, "namespace"),
        _arg("k8s.delete_pod", a, "pod", "name"),
        dry_run=dry,
    ),
    "k8s.cordon": lambda ex, a, inc, dry: ex.cordon(
        _arg("k8s.cordon", a, "node", "name"), dry_run=dry
    ),
    "k8s.uncordon": lambda ex, a, inc, dry: ex.uncordon(
        _arg("k8s.uncordon", a, "node", "name"), dry_run=dry
    ),
    "k8s.drain": lambda ex, a, inc, dry: ex.drain(
        _arg("k8s.drain", a, "node", "name"),
        dry_run=dry,
        timeout_s=_optional("k8s.drain", a, "timeout_s", float),
        force=bool(a.get("force", False)),
    ),
}


def release_fingerprint(template: Obj) -> str:
    """What a pod template runs, without the stamps a restart or the ReplicaSet adds: equal
    fingerprints mean the same release, so rolling back between them changes nothing that
    matters for a fault."""
    release = _normalise(template)
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


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _normalise(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _cause(body: Any) -> str:
    """The causes of a Status (for a 429: which disruption budget holds the pod)."""
    try:
        parsed = json.loads(body) if isinstance(body, str | bytes) else {}
    except ValueError:
        return ""
    causes = (parsed.get("details") or {}).get("causes") or [] if isinstance(parsed, dict) else []
    return "".join(f" ({c.get('message')})" for c in causes if c.get("message"))


def _api_error(action: str, target: str, exc: ApiException) -> KubeActionError:
    message = status_message(exc.body) if exc.body else (exc.reason or "no details")
    status = int(exc.status or 0)
    if status == 404:
        return TargetNotFoundError(
            action, target, f"not found ({message}); check the name and the namespace"
        )
    if status in (401, 403):
        return PermissionDeniedError(
            action,
            target,
            f"permission denied ({message}); grant the aiops service account the "
            "verb this action needs (see deploy/ RBAC)",
        )
    if status == 409:
        return ConflictError(action, target, f"conflict ({message}); retry the step")
    if status == 422:
        return KubeApiError(action, target, f"rejected as invalid: {message}", status)
    if status >= 500 or status == 0:
        return KubeApiError(
            action, target, f"API server error {status}: {message}; retry later", status
        )
    return KubeApiError(action, target, f"API error {status}: {message}", status)
