"""Discovery documents (/version, /api, /apis, /api/v1, /apis/<group>/<version>)."""

from __future__ import annotations

from typing import Any

from aiops_lab.cluster.resources import RESOURCES

# Subresources served, by parent plural: (name, group, version, kind, verbs).
SUBRESOURCES: dict[str, list[tuple[str, str, str, str, list[str]]]] = {
    "deployments": [
        ("scale", "autoscaling", "v1", "Scale", ["get", "patch", "update"]),
        ("status", "", "", "Deployment", ["get"]),
    ],
    "pods": [
        ("eviction", "policy", "v1", "Eviction", ["create"]),
        ("log", "", "", "Pod", ["get"]),
        ("status", "", "", "Pod", ["get"]),
    ],
    "nodes": [("status", "", "", "Node", ["get"])],
    "replicasets": [("status", "", "", "ReplicaSet", ["get"])],
    "daemonsets": [("status", "", "", "DaemonSet", ["get"])],
    "poddisruptionbudgets": [("status", "", "", "PodDisruptionBudget", ["get"])],
    "namespaces": [("status", "", "", "Namespace", ["get"])],
}

GROUPS: dict[str, list[str]] = {"apps": ["v1"], "policy": ["v1"]}


def version_info() -> dict[str, Any]:
    return {
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-aiops-lab",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "apiVersion": "v1",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUPS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in GROUPS]}


def api_group(name: str) -> dict[str, Any] | None:
    if name not in GROUPS:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    resources: list[dict[str, Any]] = []
    for r in RESOURCES.values():
        if r.group != group or r.version != version:
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        resources.append(entry)
        for sub, sub_group, sub_version, kind, verbs in SUBRESOURCES.get(r.plural, []):
            sub_entry: dict[str, Any] = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": verbs,
            }
            if sub_group:
                sub_entry["group"] = sub_group
                sub_entry["version"] = sub_version
            resources.append(sub_entry)
    if not resources:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
