"""The Kubernetes API's operations on objects: get and list (label and field selectors, the
list's resourceVersion), create, replace, patch (the three patch types) and delete with cascading
deletion, each validated as the apiserver would and reconciled before it returns."""

from __future__ import annotations

from typing import Any

from aiops_lab.cluster.admission import default, validate
from aiops_lab.cluster.core import ClusterCore
from aiops_lab.cluster.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    InvalidError,
    not_found,
)
from aiops_lab.cluster.kubelet import delete_pod
from aiops_lab.cluster.objects import Obj, deep_copy, is_terminating, owner_uid, rfc3339
from aiops_lab.cluster.patch import apply_patch
from aiops_lab.cluster.resources import ResourceType
from aiops_lab.cluster.selectors import parse_field_selector, parse_label_selector
from aiops_lab.cluster.state import PodRuntime

_WITH_GENERATION = frozenset({"deployments", "replicasets", "poddisruptionbudgets", "daemonsets"})


def _qualified(rtype: ResourceType) -> str:
    return f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural


class ClusterApi(ClusterCore):
    """Object CRUD as the apiserver serves it (main resources; status stays the controllers')."""

    # ------------------------------------------------------------------ reads

    def get(self, plural: str, namespace: str | None, name: str) -> Obj:
        with self._lock:
            return deep_copy(self._stored(plural, namespace, name))

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
            return [deep_copy(o) for o in items], str(self._state.store.resource_version)

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
            obj = deep_copy(body)
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
            return deep_copy(obj)

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
                body = deep_copy(body)
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
                new["status"] = deep_copy(old["status"])
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
            return deep_copy(old)
        if dry_run:
            return new
        now = self._clock()
        self._state.store.put(plural, new)
        self._reconcile(now)
        return deep_copy(new)

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
                    preview = deep_copy(obj)
                    if not is_terminating(preview):
                        grace = 30 if grace_period_seconds is None else grace_period_seconds
                        preview["metadata"]["deletionTimestamp"] = rfc3339(now + grace)
                        preview["metadata"]["deletionGracePeriodSeconds"] = grace
                    return preview
                delete_pod(self._state, obj, now, grace_period_seconds)
                result = deep_copy(obj)
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
