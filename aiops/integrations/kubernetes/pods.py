"""Pod actions: delete one pod so that its controller replaces it (idempotent: a pod that is gone
or terminating already is left alone)."""

from __future__ import annotations

from typing import Any

from aiops.domain import StepResult
from aiops.integrations.kubernetes.client import KubeClient
from aiops.integrations.kubernetes.diff import FieldChange
from aiops.integrations.kubernetes.errors import TargetNotFoundError


class PodActions(KubeClient):
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
        gone = f"Pod {namespace}/{name}: already gone; nothing to do"
        try:
            pod = self._dict(
                self._call(action, target, self.core.read_namespaced_pod, name, namespace)
            )
        except TargetNotFoundError:
            return self._nothing_to_do(action, target, dry_run, gone)
        if pod["metadata"].get("deletionTimestamp"):
            return self._nothing_to_do(
                action,
                target,
                dry_run,
                f"Pod {namespace}/{name}: already terminating; nothing to do",
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
            # A delete takes no field manager, so it does not go through `_write`.
            self._call(action, target, self.core.delete_namespaced_pod, name, namespace, **kwargs)
        except TargetNotFoundError:
            return self._nothing_to_do(action, target, dry_run, gone)
        status = pod.get("status") or {}
        node = (pod.get("spec") or {}).get("nodeName") or "no node"
        note = (
            f"its {owner['kind']} {owner['name']} creates a replacement"
            if owner
            else "WARNING: no controller owns it, so nothing will recreate it"
        )
        return self._done(
            action,
            target,
            dry_run,
            f"Pod {namespace}/{name}: delete",
            [FieldChange("pod", f"{status.get('phase', '?')} on {node}", "deleted")],
            [note],
        )
