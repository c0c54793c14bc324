"""The lab cluster: a thread-safe object store with controllers, behind the operations the
Kubernetes API offers (used by aiops_lab.kubeapi) and the ClusterPort the shop simulation uses.

Every mutation reconciles before it returns, so a scale or a rollout is visible at once; what takes
time in a real cluster (containers starting, graceful termination, CrashLoopBackOff) advances on
`tick()`, which `start()` calls from a background thread every `interval` seconds.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiops_lab.cluster import controllers
from aiops_lab.cluster.admission import default, validate
from aiops_lab.cluster.disruption import pdb_numbers
from aiops_lab.cluster.errors import (
    AlreadyExistsError,
    ApiError,
    BadRequestError,
    ConflictError,
    InvalidError,
    NotFoundError,
    TooManyRequestsError,
    not_found,
)
from aiops_lab.cluster.kubelet import container_exit, delete_pod
from aiops_lab.cluster.nodes import put_namespace, put_node, ready_condition
from aiops_lab.cluster.objects import (
    MIRROR_POD,
    REVISION,
    Obj,
    annotations_of,
    is_terminating,
    node_ready,
    owner_ref,
    owner_uid,
    pod_ready,
    revision_of,
    rfc3339,
)
from aiops_lab.cluster.patch import apply_patch
from aiops_lab.cluster.quantity import parse_quantity
from aiops_lab.cluster.resources import RESOURCES, ResourceType
from aiops_lab.cluster.selectors import (
    parse_field_selector,
    parse_label_selector,
    selector_to_matcher,
    selector_to_string,
)
from aiops_lab.cluster.state import ClusterConfig, NodeSpec, PodRuntime, State
from aiops_lab.ports import (
    ClusterPort,
    ClusterSnapshot,
    DeploymentState,
    NodeState,
    PodState,
)

_WITH_GENERATION = frozenset({"deployments", "replicasets", "poddisruptionbudgets", "daemonsets"})
FULL_PASS_S = 1.0
__all__ = ["Cluster", "ClusterConfig", "NodeSpec"]


def _qualified(rtype: ResourceType) -> str:
    return f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural


def _copy(obj: Obj) -> Obj:
    return copy.deepcopy(obj)


class Cluster:
    """An in-memory Kubernetes cluster. Satisfies aiops_lab.ports.ClusterPort."""

    def __init__(
        self, config: ClusterConfig | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config or ClusterConfig()
        self._clock = clock
        self._lock = threading.RLock()
        self._state = State(self.config)
        self._thread: threading.Thread | None = None
        self._next_due = 0.0  # earliest kubelet timer
        self._last_full = -math.inf
        self._stop = threading.Event()
        now = clock()
        with self._lock:
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                put_namespace(self._state, ns, now)
            for spec in self.config.nodes:
                put_node(self._state, spec, now)
            self._reconcile(now)

    @classmethod
    def boutique(
        cls, config: ClusterConfig | None = None, *, clock: Callable[[], float] = time.time
    ) -> Cluster:
        """A cluster running the Online Boutique in namespace `boutique` (see boutique.py)."""
        from aiops_lab.cluster.boutique import seed_boutique

        cluster = cls(config, clock=clock)
        seed_boutique(cluster)
        return cluster

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        return self._clock()

    def tick(self, now: float | None = None) -> None:
        """Advance the controllers and the kubelet to `now` (default: the clock).

        Cheap when nothing is due: every mutation reconciles at once, so a tick only has work
        when a timer (container start, back-off, graceful termination) expires; it still makes
        a full pass every `FULL_PASS_S` for the slow conditions (progress deadlines)."""
        with self._lock:
            now = self._clock() if now is None else now
            if now < self._next_due and now - self._last_full < FULL_PASS_S:
                return
            self._reconcile(now)

    def _reconcile(self, now: float) -> None:
        controllers.reconcile(self._state, now)
        self._last_full = now
        self._next_due = min(
            (
                t
                for rt in self._state.runtime.values()
                for t in (rt.start_at, rt.terminate_at)
                if t is not None
            ),
            default=math.inf,
        )

    def start(self, interval: float = 0.1) -> None:
        """Reconcile in a background thread every `interval` seconds until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                self.tick()

        self._thread = threading.Thread(target=loop, name="lab-cluster-reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def wait_for(self, predicate: Callable[[Cluster], bool], timeout: float = 5.0) -> bool:
        """Tick until predicate(cluster) holds; for tests and scripts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tick()
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

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
            return _copy(pod)

    # ------------------------------------------------------------------ API: reads

    def _rtype(self, plural: str) -> ResourceType:
        rtype = RESOURCES.get(plural)
        if rtype is None:
            raise NotFoundError(f"the server could not find the requested resource ({plural})")
        return rtype

    def _key_ns(self, rtype: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rtype.namespaced else ""

    def _stored(self, plural: str, namespace: str | None, name: str) -> Obj:
        rtype = self._rtype(plural)
        obj = self._state.store.get(plural, self._key_ns(rtype, namespace), name)
        if obj is None:
            raise not_found(plural, name, rtype.group)
        return obj

    def get(self, plural: str, namespace: str | None, name: str) -> Obj:
        with self._lock:
            return _copy(self._stored(plural, namespace, name))

    def list(
        self,
        plural: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[Obj], str]:
        """Matching objects (sorted by namespace and name) and the list's resourceVersion."""
        rtype = self._rtype(plural)
        match_labels = parse_label_selector(label_selector)
        match_fields = parse_field_selector(field_selector, rtype.field_selectors, rtype.kind)
        with self._lock:
            items = [
                o
                for o in self._state.store.items(plural, namespace if rtype.namespaced else None)
                if match_labels(o["metadata"].get("labels") or {}) and match_fields(o)
            ]
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            return [_copy(o) for o in items], str(self._state.store.resource_version)

    def resource_version(self) -> str:
        with self._lock:
            return str(self._state.store.resource_version)

    # ------------------------------------------------------------------ API: writes

    def create(self, plural: str, namespace: str | None, body: Obj, dry_run: bool = False) -> Obj:
        rtype = self._rtype(plural)
        if not isinstance(body, dict):
            raise BadRequestError(f"the body of a {rtype.kind} create must be a JSON object")
        with self._lock:
            now = self._clock()
            obj = _copy(body)
            m = obj.setdefault("metadata", {})
            if not m.get("name") and m.get("generateName"):
                m["name"] = f"{m['generateName']}{self._state.random_suffix()}"
            name = m.get("name")
            if not name:
                raise InvalidError(
                    f"{rtype.kind}: metadata.name: Required value: name or generateName "
                    "is required",
                    kind=rtype.kind,
                )
            if rtype.namespaced:
                ns = namespace or m.get("namespace") or "default"
                if m.get("namespace") and m["namespace"] != ns:
                    raise BadRequestError(
                        f"the namespace of the provided object ({m['namespace']}) does not match "
                        f"the namespace sent on the request ({ns})"
                    )
                if self._state.store.get("namespaces", "", ns) is None:
                    raise not_found("namespaces", ns)
                m["namespace"] = ns
            else:
                m.pop("namespace", None)
            key_ns = m.get("namespace", "")
            if self._state.store.get(plural, key_ns, name) is not None:
                raise AlreadyExistsError(
                    f'{plural}{"." + rtype.group if rtype.group else ""} "{name}" already exists',
                    kind=plural,
                    name=name,
                    group=rtype.group,
                )
            obj["apiVersion"] = rtype.api_version
            obj["kind"] = rtype.kind
            m["uid"] = self._state.new_uid()
            m["creationTimestamp"] = rfc3339(now)
            for transient in (
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "selfLink",
            ):
                m.pop(transient, None)
            if plural in _WITH_GENERATION:
                m["generation"] = 1
            default(plural, obj)
            validate(plural, obj, None)
            if plural == "namespaces":
                obj["status"] = {"phase": "Active"}
            elif plural == "pods":
                obj["status"] = {"phase": "Pending", "qosClass": "Burstable"}
            elif plural != "nodes" and rtype.has_status:
                obj["status"] = {}
            if dry_run:
                return obj
            self._state.store.put(plural, obj)
            if plural == "pods":
                self._state.runtime[m["uid"]] = PodRuntime(m["uid"], key_ns, name)
            self._reconcile(now)
            return _copy(obj)

    def replace(
        self, plural: str, namespace: str | None, name: str, body: Obj, dry_run: bool = False
    ) -> Obj:
        with self._lock:
            old = self._stored(plural, namespace, name)
            if not isinstance(body, dict):
                raise BadRequestError("the body of an update must be a JSON object")
            rv = (body.get("metadata") or {}).get("resourceVersion")
            if not rv:
                # PUT without a resourceVersion is an unconditional update, as in the apiserver.
                body = _copy(body)
                body.setdefault("metadata", {})["resourceVersion"] = old["metadata"][
                    "resourceVersion"
                ]
            return self._write(plural, old, body, dry_run)

    def patch(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        dry_run: bool = False,
    ) -> Obj:
        with self._lock:
            old = self._stored(plural, namespace, name)
            new = apply_patch(old, patch, content_type)
            return self._write(plural, old, new, dry_run)

    def _write(self, plural: str, old: Obj, new: Obj, dry_run: bool) -> Obj:
        """Validate and store an updated object (main resource: status stays the controllers')."""
        rtype = self._rtype(plural)
        om = old["metadata"]
        nm = new.setdefault("metadata", {})
        if nm.get("name", om["name"]) != om["name"]:
            raise BadRequestError(
                f"the name of the object ({nm.get('name')}) does not match the name on the URL "
                f"({om['name']})"
            )
        if nm.get("resourceVersion") and nm["resourceVersion"] != om["resourceVersion"]:
            raise ConflictError(
                f'Operation cannot be fulfilled on {_qualified(rtype)} "{om["name"]}": the object '
                "has been modified; please apply your changes to the latest version and try again",
                kind=plural,
                name=om["name"],
                group=rtype.group,
            )
        new["apiVersion"] = rtype.api_version
        new["kind"] = rtype.kind
        for fixed in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if fixed in om:
                nm[fixed] = om[fixed]
            else:
                nm.pop(fixed, None)
        nm.pop("managedFields", None)
        if rtype.has_status:
            if "status" in old:
                new["status"] = _copy(old["status"])
            else:
                new.pop("status", None)
        default(plural, new)
        validate(plural, new, old)
        if plural in _WITH_GENERATION and new.get("spec") != old.get("spec"):
            nm["generation"] = int(om.get("generation", 1)) + 1
        if plural == "pods" and new.get("spec") != old.get("spec"):
            raise InvalidError(
                f'Pod "{om["name"]}" is invalid: spec: Forbidden: pod updates may not change '
                "fields other than `spec.containers[*].image`, `spec.activeDeadlineSeconds` or "
                "`spec.tolerations` (the lab allows none)",
                kind="Pod",
                name=om["name"],
            )
        if new == old:
            return _copy(old)
        if dry_run:
            return new
        now = self._clock()
        self._state.store.put(plural, new)
        self._reconcile(now)
        return _copy(new)

    def delete(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        dry_run: bool = False,
        grace_period_seconds: int | None = None,
    ) -> Obj:
        """Delete; returns the pod (terminating) for pods, a Status for the rest (as the API)."""
        with self._lock:
            obj = self._stored(plural, namespace, name)
            rtype = self._rtype(plural)
            now = self._clock()
            if plural == "pods":
                if dry_run:
                    preview = _copy(obj)
                    if not is_terminating(preview):
                        grace = 30 if grace_period_seconds is None else grace_period_seconds
                        preview["metadata"]["deletionTimestamp"] = rfc3339(now + grace)
                        preview["metadata"]["deletionGracePeriodSeconds"] = grace
                    return preview
                delete_pod(self._state, obj, now, grace_period_seconds)
                result = _copy(obj)
                if grace_period_seconds == 0:
                    self._remove_pod(obj)
                self._reconcile(now)
                return result
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    "group": rtype.group,
                    "kind": plural,
                    "uid": obj["metadata"]["uid"],
                },
            }
            if dry_run:
                return status
            key_ns = obj["metadata"].get("namespace", "")
            self._state.store.remove(plural, key_ns, name)
            self._cascade(obj, now)
            self._reconcile(now)
            return status

    def _remove_pod(self, pod: Obj) -> None:
        m = pod["metadata"]
        self._state.store.remove("pods", m["namespace"], m["name"])
        self._state.runtime.pop(m["uid"], None)

    def _cascade(self, owner: Obj, now: float) -> None:
        """Background cascading deletion of what the owner controlled."""
        if owner["kind"] == "Namespace":
            ns = owner["metadata"]["name"]
            for plural in (
                "deployments",
                "daemonsets",
                "replicasets",
                "poddisruptionbudgets",
                "events",
            ):
                for obj in self._state.store.items(plural, ns):
                    self._state.store.remove(plural, ns, obj["metadata"]["name"])
            for pod in self._state.store.items("pods", ns):
                delete_pod(self._state, pod, now)
            return
        if owner["kind"] == "Node":
            # The pod garbage collector removes pods bound to a node that no longer exists.
            for pod in self._state.store.items("pods"):
                if pod.get("spec", {}).get("nodeName") == owner["metadata"]["name"]:
                    delete_pod(self._state, pod, now, 0)
            return
        uid = owner["metadata"]["uid"]
        for rs in self._state.store.items("replicasets"):
            if owner_uid(rs) == uid:
                self._state.store.remove(
                    "replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"]
                )
                self._cascade(rs, now)
        for pod in self._state.store.items("pods"):
            if owner_uid(pod) == uid:
                delete_pod(self._state, pod, now)

    # ------------------------------------------------------------------ scale subresource

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
        new = _copy(d)
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
            new = _copy(d)
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


def format_log(
    lines: Sequence[str], tail_lines: int | None = None, timestamps: bool = False
) -> str:
    if tail_lines is not None:
        lines = lines[-tail_lines:] if tail_lines > 0 else []
    if not timestamps:
        lines = [line.split(" ", 1)[1] if " " in line else line for line in lines]
    return "".join(f"{line}\n" for line in lines)


def as_port(cluster: Cluster) -> ClusterPort:
    """The cluster as the simulation sees it (mypy checks here that Cluster satisfies the port)."""
    return cluster
