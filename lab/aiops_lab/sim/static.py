"""A frozen cluster: the default Online Boutique layout, all pods ready, nothing ever changes.

Backfill runs the shop over it to write the history of a healthy shop; benchmarks use it to
measure the shop alone. The live lab uses the real lab cluster instead.
"""

from __future__ import annotations

import hashlib

from aiops_lab.ports import ClusterSnapshot, DeploymentState, NodeState, PodState
from aiops_lab.sim.topology import NAMESPACE, NODE_CPU_CORES, NODE_MEMORY_BYTES, NODES, SERVICES


def _suffix(*parts: str, n: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    h = hashlib.blake2s("/".join(parts).encode(), digest_size=8).digest()
    return "".join(alphabet[b % len(alphabet)] for b in h[:n])


def default_layout(
    at: float, namespace: str = NAMESPACE, started_at: float | None = None
) -> ClusterSnapshot:
    """Every service at its default replicas, pods spread round-robin over the nodes."""
    start = at - 3600.0 if started_at is None else started_at
    nodes = [
        NodeState(n, False, True, NODE_CPU_CORES, NODE_MEMORY_BYTES, {"kubernetes.io/hostname": n})
        for n in NODES
    ]
    deployments: list[DeploymentState] = []
    pods: list[PodState] = []
    i = 0
    for spec in SERVICES.values():
        deployments.append(
            DeploymentState(
                namespace,
                spec.name,
                spec.replicas,
                spec.replicas,
                1,
                spec.image,
                {},
                {"app": spec.name},
                spec.cpu_limit_cores,
                spec.memory_limit_bytes,
            )
        )
        rs = f"{spec.name}-{_suffix(spec.name, 'rs', n=9)}"
        for r in range(spec.replicas):
            name = f"{rs}-{_suffix(spec.name, str(r))}"
            uid = hashlib.blake2s(name.encode(), digest_size=16).hexdigest()
            pods.append(
                PodState(
                    namespace,
                    name,
                    uid,
                    spec.name,
                    NODES[i % len(NODES)],
                    1,
                    "Running",
                    True,
                    0,
                    None,
                    start,
                    {},
                    spec.cpu_limit_cores,
                    spec.memory_limit_bytes,
                )
            )
            i += 1
    return ClusterSnapshot(at, nodes, deployments, pods)


class StaticCluster:
    """ClusterPort over a fixed layout; reports from the simulation are accepted and ignored."""

    def __init__(self, at: float = 0.0, namespace: str = NAMESPACE) -> None:
        self._snapshot = default_layout(at, namespace)
        self.at = at

    def snapshot(self) -> ClusterSnapshot:
        s = self._snapshot
        return ClusterSnapshot(self.at, s.nodes, s.deployments, s.pods)

    def report_container_exit(self, namespace: str, pod: str, reason: str, exit_code: int) -> None:
        return None

    def set_pod_ready(self, namespace: str, pod: str, ready: bool) -> None:
        return None

    def rollout(
        self, namespace: str, deployment: str, image: str, annotations: dict[str, str]
    ) -> int:
        raise NotImplementedError("the static cluster cannot roll out")

    def set_node_ready(self, node: str, ready: bool) -> None:
        return None

    def scale_deployment(self, namespace: str, deployment: str, replicas: int) -> None:
        raise NotImplementedError("the static cluster cannot scale")

    def set_unschedulable(self, node: str, unschedulable: bool) -> None:
        raise NotImplementedError("the static cluster cannot cordon")

    def evict_pod(self, namespace: str, pod: str) -> bool:
        raise NotImplementedError("the static cluster cannot evict")

    def record_event(
        self, namespace: str, kind: str, name: str, reason: str, message: str, type_: str = "Normal"
    ) -> None:
        return None
