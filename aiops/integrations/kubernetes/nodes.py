"""Node actions: cordon, uncordon and drain.

A drain moves only what aiops may touch. Pods stay on the node, each with its reason in the dry
run, when they are:
- mirror (static) pods or DaemonSet pods (nothing can move them; `kubectl drain` skips them too);
- aiops' own pods: labelled `app.kubernetes.io/name: aiops` or `app.kubernetes.io/part-of:
  aiops` (as `deploy/kubernetes` labels every aiops pod), or in the namespace aiops itself runs in
  (in a cluster, its service account's namespace), so a drain never evicts the worker doing it;
- in a namespace the policy protects (the incident's policy snapshot; without one, the built-in
  kube-system, kube-public and kube-node-lease), glob patterns included.
The node is cordoned all the same, so nothing new lands there.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field

import kubernetes.client as k8s
from kubernetes.client.exceptions import ApiException

from aiops.domain import StepResult
from aiops.integrations.kubernetes.client import STRATEGIC, KubeClient, Obj
from aiops.integrations.kubernetes.diff import FieldChange, show
from aiops.integrations.kubernetes.errors import (
    ActionRefusedError,
    DrainTimeoutError,
    api_error,
    status_causes,
    status_message,
)
from aiops.policy.models import DEFAULT_PROTECTED

MIRROR_POD = "kubernetes.io/config.mirror"
AIOPS_POD_LABELS = {"app.kubernetes.io/name": "aiops", "app.kubernetes.io/part-of": "aiops"}


@dataclass
class DrainPlan:
    """Which pods on a node a drain evicts, and which stay and why."""

    evict: list[str] = field(default_factory=list)
    stay: list[tuple[str, str]] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)  # evicted only with `force`


def plan_drain(
    pods: Iterable[Obj], protected: Iterable[str], own_namespace: str | None = None
) -> DrainPlan:
    """Sort a node's pods (API JSON) into evict / stay / unmanaged; see the module docstring."""
    patterns = tuple(protected)
    plan = DrainPlan()
    for pod in pods:
        m = pod["metadata"]
        ref = f"{m['namespace']}/{m['name']}"
        if m.get("deletionTimestamp"):
            continue
        owner = next((r for r in m.get("ownerReferences") or [] if r.get("controller")), None)
        labels = m.get("labels") or {}
        if MIRROR_POD in (m.get("annotations") or {}):
            plan.stay.append((ref, "mirror pod"))
        elif owner is not None and owner.get("kind") == "DaemonSet":
            plan.stay.append((ref, "DaemonSet"))
        elif any(labels.get(k) == v for k, v in AIOPS_POD_LABELS.items()) or (
            own_namespace is not None and m["namespace"] == own_namespace
        ):
            plan.stay.append((ref, "aiops' own pod: a drain never evicts aiops itself"))
        elif any(fnmatch.fnmatchcase(m["namespace"], p) for p in patterns):
            plan.stay.append((ref, f"namespace {m['namespace']} is protected by the policy"))
        elif (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or owner:
            plan.evict.append(ref)
        else:
            plan.unmanaged.append(ref)
    return plan


class NodeActions(KubeClient):
    own_namespace: str | None = None

    def cordon(self, node: str, *, dry_run: bool = False) -> StepResult:
        return self._set_unschedulable("k8s.cordon", node, True, dry_run)

    def uncordon(self, node: str, *, dry_run: bool = False) -> StepResult:
        return self._set_unschedulable("k8s.uncordon", node, False, dry_run)

    def _set_unschedulable(self, action: str, node: str, value: bool, dry_run: bool) -> StepResult:
        target = f"Node/{node}"
        obj = self._call(action, target, self.core.read_node, node)
        before = bool(obj.spec.unschedulable) if obj.spec else False
        verb = "cordon" if value else "uncordon"
        if before == value:
            return self._nothing_to_do(
                action, target, dry_run, f"Node {node}: already {verb}ed; nothing to do"
            )
        self._write(
            action,
            target,
            dry_run,
            self.core.patch_node,
            node,
            {"spec": {"unschedulable": value or None}},
            _content_type=STRATEGIC,
        )
        return self._done(
            action,
            target,
            dry_run,
            f"Node {node}: {verb}",
            [FieldChange("spec.unschedulable", show(before), show(value))],
        )

    @property
    def protected(self) -> tuple[str, ...]:
        if self.protected_namespaces is None:
            return DEFAULT_PROTECTED
        return self.protected_namespaces

    def drain(
        self,
        node: str,
        *,
        dry_run: bool = False,
        timeout_s: float | None = None,
        force: bool = False,
    ) -> StepResult:
        """`kubectl drain`: cordon, then evict the node's pods through the eviction API
        (PodDisruptionBudgets respected: a 429 is retried until `timeout_s`), leaving the pods
        the module docstring lists, and wait until the evicted pods are gone. Pods no controller
        owns are refused unless `force` (nothing would recreate them)."""
        action, target = "k8s.drain", f"Node/{node}"
        timeout = self._wait_limit(self.drain_timeout_s if timeout_s is None else timeout_s)
        cordon = self._set_unschedulable(action, node, True, dry_run)
        plan = self._plan_drain(action, target, node)
        if plan.unmanaged and not force:
            raise ActionRefusedError(
                action,
                target,
                "cannot evict pods that no controller owns (nothing would "
                f"recreate them): {', '.join(plan.unmanaged)}; move them yourself or drain "
                "with force",
            )
        to_evict = plan.evict + plan.unmanaged
        notes = [f"stays: {ref} ({why})" for ref, why in plan.stay]
        cordon_changes = (
            [FieldChange("spec.unschedulable", "false", "true")] if cordon.changed else []
        )
        if dry_run:
            for ref in to_evict:
                reason = self._evict(action, target, ref, dry_run=True)
                if reason:
                    notes.append(f"wait: {ref} (now blocked: {reason}; a drain waits for it)")
            return self._done(
                action,
                target,
                True,
                f"Node {node}: drain",
                cordon_changes + [_moves(ref, node) for ref in to_evict],
                notes,
                changed=cordon.changed or bool(to_evict),
            )
        evicted = self._evict_all(action, target, node, to_evict, timeout)
        changes = cordon_changes + [_moves(ref, node) for ref in evicted]
        if not changes:
            return self._nothing_to_do(
                action,
                target,
                False,
                f"Node {node}: already drained (cordoned, no pods to evict); nothing to do",
                notes,
            )
        return self._done(action, target, False, f"Node {node}: drain", changes, notes)

    def _pods_on(self, action: str, target: str, node: str) -> list[Obj]:
        pods = self._call(
            action,
            target,
            self.core.list_pod_for_all_namespaces,
            field_selector=f"spec.nodeName={node}",
        )
        return [self._dict(item) for item in pods.items]

    def _plan_drain(self, action: str, target: str, node: str) -> DrainPlan:
        return plan_drain(self._pods_on(action, target, node), self.protected, self.own_namespace)

    def _evict(self, action: str, target: str, ref: str, *, dry_run: bool) -> str | None:
        """Evict one pod; returns None when evicted (or gone), else why it must wait (429)."""
        namespace, name = ref.split("/", 1)
        body = k8s.V1Eviction(
            metadata=k8s.V1ObjectMeta(name=name, namespace=namespace),
            delete_options=k8s.V1DeleteOptions(dry_run=["All"]) if dry_run else None,
        )
        try:
            self._request(
                action,
                target,
                self.core.create_namespaced_pod_eviction,
                name,
                namespace,
                body,
                dry_run="All" if dry_run else None,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 429:
                return status_message(exc.body) + status_causes(exc.body)
            raise api_error(action, target, exc) from exc
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
            present = {
                f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                for p in self._pods_on(action, target, node)
            }
            left = set(evicted) & present
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


def _moves(ref: str, node: str) -> FieldChange:
    return FieldChange(f"pod {ref}", f"on {node}", "evicted")
