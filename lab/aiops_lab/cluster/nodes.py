"""Namespaces and nodes as a freshly installed cluster has them."""

from __future__ import annotations

from aiops_lab.cluster.objects import Obj, rfc3339
from aiops_lab.cluster.state import NodeSpec, State


def put_namespace(state: State, name: str, now: float) -> None:
    state.store.put(
        "namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "uid": state.new_uid(),
                "creationTimestamp": rfc3339(now),
                "labels": {"kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        },
    )


def put_node(state: State, spec: NodeSpec, now: float) -> None:
    at = rfc3339(now)
    index = len(state.store.items("nodes"))
    resources = {
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": str(spec.pods),
        "ephemeral-storage": "100Gi",
    }
    state.store.put(
        "nodes",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": spec.name,
                "uid": state.new_uid(),
                "creationTimestamp": at,
                "labels": {
                    "kubernetes.io/hostname": spec.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "beta.kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": spec.zone,
                    "node.kubernetes.io/instance-type": "lab.standard",
                },
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
            "status": {
                "capacity": dict(resources),
                "allocatable": dict(resources),
                "conditions": _node_conditions(True, at),
                "addresses": [
                    {"type": "InternalIP", "address": f"192.168.0.{10 + index}"},
                    {"type": "Hostname", "address": spec.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": state.new_uid(),
                    "containerRuntimeVersion": "containerd://1.7.22",
                    "kernelVersion": "6.1.0-lab",
                    "kubeProxyVersion": "v1.33.0",
                    "kubeletVersion": "v1.33.0",
                    "machineID": state.new_uid().replace("-", ""),
                    "operatingSystem": "linux",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "systemUUID": state.new_uid(),
                },
            },
        },
    )


def ready_condition(ready: bool, at: str) -> Obj:
    return {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": "KubeletReady" if ready else "KubeletNotReady",
        "message": "kubelet is posting ready status"
        if ready
        else "container runtime is down: PLEG is not healthy",
        "lastHeartbeatTime": at,
        "lastTransitionTime": at,
    }


def _node_conditions(ready: bool, at: str) -> list[Obj]:
    def cond(type_: str, reason: str, message: str) -> Obj:
        return {
            "type": type_,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": at,
            "lastTransitionTime": at,
        }

    return [
        cond(
            "MemoryPressure",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        cond("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ready_condition(ready, at),
    ]
