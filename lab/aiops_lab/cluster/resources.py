"""The resource types the lab serves, as the apiserver's discovery documents describe them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    plural: str
    kind: str
    group: str  # "" for the core group
    version: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    has_status: bool = False  # status is only written by controllers (subresource)
    field_selectors: frozenset[str] = frozenset({"metadata.name", "metadata.namespace"})

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def singular(self) -> str:
        return self.kind.lower()


_RW = ("create", "delete", "get", "list", "patch", "update")

RESOURCES: dict[str, ResourceType] = {
    r.plural: r
    for r in (
        ResourceType(
            "namespaces",
            "Namespace",
            "",
            "v1",
            False,
            _RW,
            ("ns",),
            has_status=True,
            field_selectors=frozenset({"metadata.name", "status.phase"}),
        ),
        ResourceType(
            "nodes",
            "Node",
            "",
            "v1",
            False,
            _RW,
            ("no",),
            has_status=True,
            field_selectors=frozenset({"metadata.name", "spec.unschedulable"}),
        ),
        ResourceType(
            "pods",
            "Pod",
            "",
            "v1",
            True,
            _RW,
            ("po",),
            has_status=True,
            field_selectors=frozenset(
                {
                    "metadata.name",
                    "metadata.namespace",
                    "spec.nodeName",
                    "status.phase",
                    "spec.restartPolicy",
                    "spec.schedulerName",
                    "status.podIP",
                }
            ),
        ),
        ResourceType(
            "events",
            "Event",
            "",
            "v1",
            True,
            _RW,
            ("ev",),
            field_selectors=frozenset(
                {
                    "metadata.name",
                    "metadata.namespace",
                    "involvedObject.kind",
                    "involvedObject.name",
                    "involvedObject.namespace",
                    "involvedObject.uid",
                    "involvedObject.apiVersion",
                    "involvedObject.fieldPath",
                    "reason",
                    "type",
                    "source",
                    "reportingComponent",
                }
            ),
        ),
        ResourceType(
            "deployments", "Deployment", "apps", "v1", True, _RW, ("deploy",), has_status=True
        ),
        ResourceType("daemonsets", "DaemonSet", "apps", "v1", True, _RW, ("ds",), has_status=True),
        ResourceType(
            "replicasets",
            "ReplicaSet",
            "apps",
            "v1",
            True,
            _RW,
            ("rs",),
            has_status=True,
            field_selectors=frozenset({"metadata.name", "metadata.namespace", "status.replicas"}),
        ),
        ResourceType(
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            "policy",
            "v1",
            True,
            _RW,
            ("pdb",),
            has_status=True,
        ),
    )
}


def resource(plural: str) -> ResourceType:
    return RESOURCES[plural]
