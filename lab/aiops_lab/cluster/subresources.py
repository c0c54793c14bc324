"""The subresources of the lab's Kubernetes API: a Deployment's scale, a pod's eviction (with
PodDisruptionBudgets) and a pod's log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiops_lab.cluster.api import ClusterApi
from aiops_lab.cluster.disruption import pdb_numbers
from aiops_lab.cluster.errors import ApiError, BadRequestError, InvalidError, TooManyRequestsError
from aiops_lab.cluster.kubelet import delete_pod
from aiops_lab.cluster.objects import Obj, deep_copy, is_terminating, pod_ready
from aiops_lab.cluster.patch import apply_patch
from aiops_lab.cluster.selectors import selector_to_matcher, selector_to_string


class ClusterSubresources(ClusterApi):
    """The scale, eviction and log subresources, on top of the object operations."""

    # ------------------------------------------------------------------ scale

    def get_scale(self, namespace: str, name: str) -> Obj:
        with self._lock:
            return self._scale_of(self._stored("deployments", namespace, name))

    def _scale_of(self, d: Obj) -> Obj:
        m = d["metadata"]
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": m["name"],
                "namespace": m["namespace"],
                "uid": m["uid"],
                "resourceVersion": m["resourceVersion"],
                "creationTimestamp": m["creationTimestamp"],
            },
            "spec": {"replicas": int(d["spec"].get("replicas", 1))},
            "status": {
                "replicas": int((d.get("status") or {}).get("replicas", 0)),
                "selector": selector_to_string(d["spec"].get("selector")),
            },
        }

    def replace_scale(self, namespace: str, name: str, body: Obj, dry_run: bool = False) -> Obj:
        with self._lock:
            d = self._stored("deployments", namespace, name)
            return self._write_scale(d, body, dry_run)

    def patch_scale(
        self, namespace: str, name: str, content_type: str, patch: Any, dry_run: bool = False
    ) -> Obj:
        with self._lock:
            d = self._stored("deployments", namespace, name)
            return self._write_scale(
                d, apply_patch(self._scale_of(d), patch, content_type), dry_run
            )

    def _write_scale(self, d: Obj, scale: Obj, dry_run: bool) -> Obj:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise InvalidError(
                f'Scale.autoscaling "{d["metadata"]["name"]}" is invalid: spec.replicas: '
                f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                kind="Scale",
                name=d["metadata"]["name"],
                group="autoscaling",
                causes=[
                    {
                        "reason": "FieldValueInvalid",
                        "field": "spec.replicas",
                        "message": "must be greater than or equal to 0",
                    }
                ],
            )
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        new = deep_copy(d)
        new["spec"]["replicas"] = replicas
        if rv:
            new["metadata"]["resourceVersion"] = rv
        result = self._write("deployments", d, new, dry_run)
        scale_out = self._scale_of(result)
        return scale_out

    # ------------------------------------------------------------------ eviction and logs

    def evict(
        self, namespace: str, name: str, body: Obj | None = None, dry_run: bool = False
    ) -> Obj:
        """policy/v1 Eviction: delete the pod unless a PodDisruptionBudget forbids it (429)."""
        with self._lock:
            pod = self._stored("pods", namespace, name)
            now = self._clock()
            success: Obj = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "code": 201,
            }
            if is_terminating(pod):
                return success
            pod_labels = pod["metadata"].get("labels") or {}
            pdbs = [
                p
                for p in self._state.store.items("poddisruptionbudgets", namespace)
                if selector_to_matcher(p.get("spec", {}).get("selector"))(pod_labels)
            ]
            if len(pdbs) > 1:
                raise ApiError(
                    "This pod has more than one PodDisruptionBudget, which the eviction "
                    "subresource does not support.",
                    kind="pods",
                    name=name,
                )
            if pdbs:
                pdb = pdbs[0]
                _, desired, healthy = pdb_numbers(self._state, pdb)
                allowed = healthy - desired
                if (pod_ready(pod) and allowed <= 0) or (not pod_ready(pod) and healthy < desired):
                    pdb_name = pdb["metadata"]["name"]
                    raise TooManyRequestsError(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        kind="pods",
                        name=name,
                        causes=[
                            {
                                "reason": "DisruptionBudget",
                                "message": f"The disruption budget {pdb_name} needs {desired} "
                                f"healthy pods and has {healthy} currently",
                            }
                        ],
                    )
            if dry_run:
                return success
            grace = ((body or {}).get("deleteOptions") or {}).get("gracePeriodSeconds")
            self._state.record_event(
                now, pod, "Evicted", "Evicted through the eviction API", component="eviction-api"
            )
            delete_pod(self._state, pod, now, grace)
            self._reconcile(now)
            return success

    def log_lines(
        self, namespace: str, name: str, container: str | None = None, previous: bool = False
    ) -> tuple[Sequence[str], str, int]:
        """Raw log lines ("<RFC3339> <text>") of the current or previous container, the
        container's id and how many lines it has written in all (for following a log)."""
        with self._lock:
            pod = self._stored("pods", namespace, name)
            names = [c.get("name") for c in pod.get("spec", {}).get("containers") or []]
            if container is not None and container not in names:
                raise BadRequestError(f"container {container} is not valid for pod {name}")
            rt = self._state.runtime.get(pod["metadata"]["uid"])
            if rt is None or (not previous and not rt.container_id):
                raise BadRequestError(
                    f'container "{names[0] if names else ""}" in pod "{name}" is '
                    "waiting to start: ContainerCreating"
                )
            if previous and rt.restarts == 0:
                raise BadRequestError(
                    f'previous terminated container "{names[0]}" in pod "{name}" not found'
                )
            if previous:
                return list(rt.previous_logs), "", rt.previous_logged
            return list(rt.logs), rt.container_id, rt.logged

    def pod_log(
        self,
        namespace: str,
        name: str,
        container: str | None = None,
        previous: bool = False,
        tail_lines: int | None = None,
        timestamps: bool = False,
    ) -> str:
        lines, _, _ = self.log_lines(namespace, name, container, previous)
        return format_log(lines, tail_lines, timestamps)


def format_log(
    lines: Sequence[str], tail_lines: int | None = None, timestamps: bool = False
) -> str:
    if tail_lines is not None:
        lines = lines[-tail_lines:] if tail_lines > 0 else []
    if not timestamps:
        lines = [line.split(" ", 1)[1] if " " in line else line for line in lines]
    return "".join(f"{line}\n" for line in lines)
