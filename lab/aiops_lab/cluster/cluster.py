"""The lab cluster (`Cluster`): the Kubernetes API's operations (core.py, api.py,
subresources.py) plus what the shop simulation sees of and does to it (aiops_lab.ports.ClusterPort:
a snapshot of nodes, Deployments and pods; container exits, readiness, rollouts, node readiness and
the everyday operations of people and controllers) and the helpers that seed it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiops_lab.cluster.errors import NotFoundError, TooManyRequestsError
from aiops_lab.cluster.kubelet import container_exit
from aiops_lab.cluster.nodes import put_namespace, ready_condition
from aiops_lab.cluster.objects import (
    MIRROR_POD,
    REVISION,
    Obj,
    annotations_of,
    deep_copy,
    is_terminating,
    node_ready,
    owner_ref,
    owner_uid,
    pod_ready,
    revision_of,
    rfc3339,
)
from aiops_lab.cluster.quantity import parse_quantity
from aiops_lab.cluster.resources import RESOURCES
from aiops_lab.cluster.state import ClusterConfig, NodeSpec, PodRuntime
from aiops_lab.cluster.subresources import ClusterSubresources
from aiops_lab.ports import (
    ClusterPort,
    ClusterSnapshot,
    DeploymentState,
    NodeState,
    PodState,
)

__all__ = ["Cluster", "ClusterConfig", "NodeSpec"]


class Cluster(ClusterSubresources):
    """An in-memory Kubernetes cluster. Satisfies aiops_lab.ports.ClusterPort."""

    @classmethod
    def boutique(
        cls, config: ClusterConfig | None = None, *, clock: Callable[[], float] = time.time
    ) -> Cluster:
        """A cluster running the Online Boutique in namespace `boutique` (see boutique.py)."""
        from aiops_lab.cluster.boutique import seed_boutique

        cluster = cls(config, clock=clock)
        seed_boutique(cluster)
        return cluster

    # ------------------------------------------------------------------ seeding

    def add_namespace(self, name: str) -> None:
        with self._lock:
            if self._state.store.get("namespaces", "", name) is None:
                put_namespace(self._state, name, self._clock())

    def add_object(self, plural: str, obj: Obj) -> Obj:
        """Create an object as a cluster admin would (`kubectl apply`), then reconcile."""
        namespace = obj.get("metadata", {}).get("namespace", "")
        return self.create(plural, namespace, obj)

    def add_static_pod(
        self,
        namespace: str,
        name: str,
        node: str,
        *,
        owner: Obj | None = None,
        mirror: bool = False,
        image: str = "registry.k8s.io/pause:3.10",
    ) -> Obj:
        """A pod no ReplicaSet manages, already bound to `node`: a DaemonSet's pod (`owner`), a
        mirror (static) pod, or a bare pod."""
        with self._lock:
            now = self._clock()
            uid = self._state.new_uid()
            template_labels = (
                (owner or {}).get("spec", {}).get("template", {}).get("metadata") or {}
            ).get("labels") or {"app": name}
            metadata: Obj = {
                "name": name,
                "namespace": namespace,
                "uid": uid,
                "creationTimestamp": rfc3339(now),
                "labels": dict(template_labels),
            }
            if owner is not None:
                metadata["ownerReferences"] = [owner_ref(owner)]
            if mirror:
                metadata["annotations"] = {MIRROR_POD: uid, "kubernetes.io/config.source": "file"}
            pod: Obj = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": metadata,
                "spec": {
                    "nodeName": node,
                    "containers": [
                        {
                            "name": (owner or {}).get("metadata", {}).get("name", name),
                            "image": image,
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ],
                    "restartPolicy": "Always",
                    "tolerations": [{"operator": "Exists"}],
                },
                "status": {"phase": "Pending", "qosClass": "Burstable"},
            }
            self._state.store.put("pods", pod)
            rt = PodRuntime(uid, namespace, name, start_at=now)
            self._state.runtime[uid] = rt
            self._reconcile(now)
            return deep_copy(pod)

    # ------------------------------------------------------------------ ClusterPort

    def snapshot(self) -> ClusterSnapshot:
        with self._lock:
            store = self._state.store
            nodes = [
                NodeState(
                    name=n["metadata"]["name"],
                    unschedulable=bool(n.get("spec", {}).get("unschedulable")),
                    ready=node_ready(n),
                    cpu_cores=parse_quantity(n["status"]["allocatable"]["cpu"]),
                    memory_bytes=parse_quantity(n["status"]["allocatable"]["memory"]),
                    labels=dict(n["metadata"].get("labels") or {}),
                )
                for n in sorted(store.items("nodes"), key=lambda n: n["metadata"]["name"])
            ]
            deployments: list[DeploymentState] = []
            by_uid: dict[str, str] = {}
            for d in sorted(
                store.items("deployments"),
                key=lambda d: (d["metadata"]["namespace"], d["metadata"]["name"]),
            ):
                by_uid[d["metadata"]["uid"]] = d["metadata"]["name"]
                c = _first_container(d["spec"]["template"].get("spec") or {})
                limits = (c.get("resources") or {}).get("limits") or {}
                deployments.append(
                    DeploymentState(
                        namespace=d["metadata"]["namespace"],
                        name=d["metadata"]["name"],
                        spec_replicas=int(d["spec"].get("replicas", 1)),
                        available_replicas=int((d.get("status") or {}).get("availableReplicas", 0)),
                        revision=revision_of(d),
                        image=str(c.get("image", "")),
                        template_annotations=dict(
                            (d["spec"]["template"].get("metadata") or {}).get("annotations") or {}
                        ),
                        labels=dict(d["metadata"].get("labels") or {}),
                        cpu_limit_cores=parse_quantity(limits.get("cpu", "0")),
                        memory_limit_bytes=parse_quantity(limits.get("memory", "0")),
                    )
                )
            rs_info: dict[str, tuple[str, int]] = {}
            for rs in store.items("replicasets"):
                owner = owner_uid(rs)
                if owner in by_uid:
                    rs_info[rs["metadata"]["uid"]] = (by_uid[owner], revision_of(rs))
            pods: list[PodState] = []
            for p in sorted(
                store.items("pods"),
                key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]),
            ):
                info = rs_info.get(owner_uid(p) or "")
                if info is None:
                    continue  # not a Deployment's pod (DaemonSet, static): not the shop's
                rt = self._state.runtime.get(p["metadata"]["uid"])
                c = _first_container(p.get("spec") or {})
                limits = (c.get("resources") or {}).get("limits") or {}
                last = (rt.last_terminated or {}) if rt else {}
                pods.append(
                    PodState(
                        namespace=p["metadata"]["namespace"],
                        name=p["metadata"]["name"],
                        uid=p["metadata"]["uid"],
                        deployment=info[0],
                        node=p.get("spec", {}).get("nodeName"),
                        revision=info[1],
                        phase=str((p.get("status") or {}).get("phase", "Pending")),
                        ready=pod_ready(p),
                        restarts=rt.restarts if rt else 0,
                        last_terminated_reason=last.get("reason"),
                        started_at=rt.started_at if rt else 0.0,
                        template_annotations=annotations_of(p),
                        cpu_limit_cores=parse_quantity(limits.get("cpu", "0")),
                        memory_limit_bytes=parse_quantity(limits.get("memory", "0")),
                        deleting=is_terminating(p),
                    )
                )
            return ClusterSnapshot(
                at=self._clock(), nodes=nodes, deployments=deployments, pods=pods
            )

    def report_container_exit(self, namespace: str, pod: str, reason: str, exit_code: int) -> None:
        """A container died. Unknown or terminating pods are ignored: the simulation may report on
        a pod that was deleted since its last snapshot."""
        with self._lock:
            obj = self._state.store.get("pods", namespace, pod)
            if obj is None or is_terminating(obj):
                return
            rt = self._state.runtime.get(obj["metadata"]["uid"])
            if rt is None or not rt.running:
                return
            now = self._clock()
            container_exit(self._state, obj, reason, exit_code, now)
            self._reconcile(now)

    def set_pod_ready(self, namespace: str, pod: str, ready: bool) -> None:
        """The readiness probe's verdict, sticky until set again (with
        `ClusterConfig.external_readiness`, until the container restarts). Unknown pods are
        ignored: the simulation may speak of a pod deleted since its last snapshot."""
        with self._lock:
            obj = self._state.store.get("pods", namespace, pod)
            if obj is None:
                return
            rt = self._state.runtime.get(obj["metadata"]["uid"])
            if rt is None or rt.ready_override is ready:
                return
            rt.ready_override = ready
            self._reconcile(self._clock())

    def rollout(
        self, namespace: str, deployment: str, image: str, annotations: dict[str, str]
    ) -> int:
        """Ship a new pod template (image and template annotations, "" removes an annotation)."""
        with self._lock:
            d = self._stored("deployments", namespace, deployment)
            new = deep_copy(d)
            tmpl = new["spec"]["template"]
            containers = tmpl.setdefault("spec", {}).setdefault("containers", [{}])
            containers[0]["image"] = image
            ann = tmpl.setdefault("metadata", {}).setdefault("annotations", {})
            for key, value in annotations.items():
                if value == "":
                    ann.pop(key, None)
                else:
                    ann[key] = value
            stored = self._write("deployments", d, new, dry_run=False)
            return int(annotations_of(stored).get(REVISION, "0"))

    def set_node_ready(self, node: str, ready: bool) -> None:
        with self._lock:
            obj = self._stored("nodes", None, node)
            if node_ready(obj) == ready:
                return
            now = self._clock()
            obj["status"]["conditions"] = [
                c if c["type"] != "Ready" else ready_condition(ready, rfc3339(now))
                for c in obj["status"]["conditions"]
            ]
            self._state.store.touch(obj)
            self._state.record_event(
                now,
                obj,
                "NodeReady" if ready else "NodeNotReady",
                f"Node {node} status is now: {'NodeReady' if ready else 'NodeNotReady'}",
                "Normal",
                component="node-controller",
            )
            self._reconcile(now)

    def scale_deployment(self, namespace: str, deployment: str, replicas: int) -> None:
        self.patch_scale(
            namespace,
            deployment,
            "application/merge-patch+json",
            {"spec": {"replicas": replicas}},
        )

    def set_unschedulable(self, node: str, unschedulable: bool) -> None:
        self.patch(
            "nodes",
            None,
            node,
            "application/merge-patch+json",
            {"spec": {"unschedulable": unschedulable}},
        )

    def evict_pod(self, namespace: str, pod: str) -> bool:
        try:
            self.evict(namespace, pod)
        except TooManyRequestsError:
            return False
        except NotFoundError:
            pass  # gone already: nothing left to evict
        return True

    def record_event(
        self, namespace: str, kind: str, name: str, reason: str, message: str, type_: str = "Normal"
    ) -> None:
        with self._lock:
            plural = next((p for p, r in RESOURCES.items() if r.kind == kind), None)
            involved: Obj | None = None
            if plural is not None:
                rtype = RESOURCES[plural]
                involved = self._state.store.get(
                    plural, namespace if rtype.namespaced else "", name
                )
            if involved is None:
                involved = {
                    "apiVersion": "v1",
                    "kind": kind,
                    "metadata": {"name": name, "namespace": namespace},
                }
            self._state.record_event(
                self._clock(), involved, reason, message, type_, component="lab-simulation"
            )


def _first_container(pod_spec: Obj) -> Obj:
    containers: list[Obj] = pod_spec.get("containers") or [{}]
    return containers[0]


def as_port(cluster: Cluster) -> ClusterPort:
    """The cluster as the simulation sees it (mypy checks here that Cluster satisfies the port)."""
    return cluster
