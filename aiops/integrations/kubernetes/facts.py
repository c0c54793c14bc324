"""Read-only facts about a remediation target, for planning, policy and preconditions.

Everything here is a read through the official client, each bounded by a request timeout;
nothing mutates the cluster.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from aiops.integrations.kubernetes.client import REQUEST_TIMEOUT_S
from aiops.integrations.kubernetes.releases import REVISION
from aiops.playbooks.models import K8sCheck
from aiops.policy.evaluate import PdbInfo


class TargetFacts:
    """What the cluster says about one Deployment or Node right now."""

    def __init__(self) -> None:
        self.replicas: int | None = None
        self.labels: dict[str, str] = {}
        self.pod: str | None = None
        self.node: str | None = None
        self.pdbs: list[PdbInfo] = []


class ClusterFacts:
    def __init__(self, api_client: k8s.ApiClient, *, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        # Typed as Any: the client's models make every field Optional, and these reads only
        # touch fields a valid object always has.
        self.core: Any = _Timed(k8s.CoreV1Api(api_client), timeout_s)
        self.apps: Any = _Timed(k8s.AppsV1Api(api_client), timeout_s)
        self.policy: Any = _Timed(k8s.PolicyV1Api(api_client), timeout_s)

    def deployment(self, namespace: str, name: str) -> TargetFacts:
        facts = TargetFacts()
        try:
            dep = self.apps.read_namespaced_deployment(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return facts
            raise
        facts.replicas = dep.spec.replicas
        facts.labels = dict(dep.metadata.labels or {})
        selector = dep.spec.selector.match_labels or {}
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        pods = self.core.list_namespaced_pod(namespace, label_selector=label_selector).items
        facts.pod = _most_troubled_pod(pods)
        target = f"Deployment/{namespace}/{name}"
        for pdb in self.policy.list_namespaced_pod_disruption_budget(namespace).items:
            match = (pdb.spec.selector.match_labels or {}) if pdb.spec.selector else {}
            if match and all(selector.get(k) == v for k, v in match.items()):
                facts.pdbs.append(
                    PdbInfo(
                        name=pdb.metadata.name,
                        namespace=namespace,
                        targets=[target],
                        min_available=_int_or_none(pdb.spec.min_available),
                        current_healthy=pdb.status.current_healthy if pdb.status else None,
                        disruptions_allowed=pdb.status.disruptions_allowed if pdb.status else None,
                    )
                )
        return facts

    def node(self, name: str) -> TargetFacts:
        facts = TargetFacts()
        try:
            node = self.core.read_node(name)
        except ApiException as exc:
            if exc.status == 404:
                return facts
            raise
        facts.labels = dict(node.metadata.labels or {})
        facts.node = name
        return facts

    def check(self, check: K8sCheck, args: dict[str, Any]) -> tuple[bool, str]:
        """Run one Kubernetes precondition; (passed, what was found)."""
        ns, name = str(args.get("namespace", "")), str(args.get("name", args.get("node", "")))
        if check is K8sCheck.DEPLOYMENT_EXISTS:
            found = self.deployment(ns, name).replicas is not None
            return found, f"Deployment {ns}/{name} {'exists' if found else 'not found'}"
        if check is K8sCheck.DEPLOYMENT_HAS_PREVIOUS_REVISION:
            revisions = self._revisions(ns, name)
            ok = len(revisions) >= 2
            return ok, f"Deployment {ns}/{name} has revisions {sorted(revisions)}"
        if check is K8sCheck.POD_EXISTS:
            pod = str(args.get("pod", name))
            try:
                self.core.read_namespaced_pod(pod, ns)
            except ApiException as exc:
                if exc.status == 404:
                    return False, f"Pod {ns}/{pod} not found"
                raise
            return True, f"Pod {ns}/{pod} exists"
        if check in (K8sCheck.NODE_EXISTS, K8sCheck.NODE_READY):
            try:
                node = self.core.read_node(name)
            except ApiException as exc:
                if exc.status == 404:
                    return False, f"Node {name} not found"
                raise
            if check is K8sCheck.NODE_EXISTS:
                return True, f"Node {name} exists"
            ready = any(
                c.type == "Ready" and c.status == "True" for c in (node.status.conditions or [])
            )
            return ready, f"Node {name} is {'Ready' if ready else 'not Ready'}"
        if check is K8sCheck.OTHER_NODES_SCHEDULABLE:
            others = [
                n
                for n in self.core.list_node().items
                if n.metadata.name != name and not n.spec.unschedulable
            ]
            return bool(others), f"{len(others)} other schedulable node(s)"
        return False, f"unknown check {check}"

    def _revisions(self, namespace: str, name: str) -> set[str]:
        dep = self.apps.read_namespaced_deployment(name, namespace)
        selector = dep.spec.selector.match_labels or {}
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        sets = self.apps.list_namespaced_replica_set(namespace, label_selector=label_selector)
        return {
            (rs.metadata.annotations or {}).get(REVISION, "")
            for rs in sets.items
            if any(
                ref.kind == "Deployment" and ref.name == name
                for ref in (rs.metadata.owner_references or [])
            )
        } - {""}


class _Timed:
    """An API object whose every call carries the request timeout."""

    def __init__(self, api: Any, timeout_s: float) -> None:
        self._api = api
        self._timeout_s = timeout_s

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._api, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, _request_timeout=self._timeout_s, **kwargs)

        return call


def _most_troubled_pod(pods: list[Any]) -> str | None:
    def restarts(pod: Any) -> int:
        return sum(cs.restart_count for cs in (pod.status.container_statuses or []))

    ranked = sorted(pods, key=lambda p: (-restarts(p), p.metadata.name))
    return ranked[0].metadata.name if ranked else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None
