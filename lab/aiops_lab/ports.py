"""The seam between the lab's cluster (object store, controllers, Kubernetes API) and the lab's
shop simulation (traffic, faults, metrics).

The cluster is the source of truth for what runs where: replicas, revisions, pods, nodes. The
simulation reads a snapshot each tick, derives latency/errors/CPU/memory from it, and reports back
only what a kubelet would (a container exited, a pod became ready or not). Faults that live in the
code of a revision (bad_rollout, crashloop) are made through `rollout`, exactly as a person would
ship them, so that `kubectl rollout undo` really removes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Pod-template annotation the simulation reads to know how a revision behaves
# (e.g. "errors:0.3" or "crash:bad-config"). A rollback restores the previous template and with it
# the previous behaviour.
BEHAVIOUR_ANNOTATION = "lab.aiops.dev/behaviour"


@dataclass(frozen=True)
class NodeState:
    name: str
    unschedulable: bool
    ready: bool
    cpu_cores: float
    memory_bytes: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeploymentState:
    namespace: str
    name: str
    spec_replicas: int
    available_replicas: int
    revision: int
    image: str
    template_annotations: dict[str, str]
    labels: dict[str, str]
    cpu_limit_cores: float
    memory_limit_bytes: float


@dataclass(frozen=True)
class PodState:
    namespace: str
    name: str
    uid: str
    deployment: str
    node: str | None
    revision: int
    phase: str  # Pending | Running | Succeeded | Failed
    ready: bool
    restarts: int
    last_terminated_reason: str | None
    started_at: float  # unix seconds when the current container started
    template_annotations: dict[str, str]
    cpu_limit_cores: float
    memory_limit_bytes: float
    deleting: bool = False


@dataclass(frozen=True)
class ClusterSnapshot:
    at: float
    nodes: list[NodeState]
    deployments: list[DeploymentState]
    pods: list[PodState]


class ClusterPort(Protocol):
    """What the simulation may see of and do to the lab cluster."""

    def snapshot(self) -> ClusterSnapshot: ...

    def report_container_exit(self, namespace: str, pod: str, reason: str, exit_code: int) -> None:
        """A container died (OOMKilled, Error, ...): restart count + 1, last termination reason
        set, the pod not ready until the kubelet restarts it (with CrashLoopBackOff back-off)."""
        ...

    def set_pod_ready(self, namespace: str, pod: str, ready: bool) -> None: ...

    def rollout(
        self, namespace: str, deployment: str, image: str, annotations: dict[str, str]
    ) -> int:
        """Change the pod template as `kubectl set image` / `kubectl annotate` on the template
        would: a new ReplicaSet and revision, pods replaced. Returns the new revision."""
        ...

    def set_node_ready(self, node: str, ready: bool) -> None: ...

    # What people and controllers do through the Kubernetes API (the lab's everyday noise:
    # an autoscaler, a person draining a node).

    def scale_deployment(self, namespace: str, deployment: str, replicas: int) -> None:
        """Set spec.replicas, as the scale subresource does."""
        ...

    def set_unschedulable(self, node: str, unschedulable: bool) -> None:
        """Cordon (True) or uncordon (False) a node."""
        ...

    def evict_pod(self, namespace: str, pod: str) -> bool:
        """Evict a pod through the eviction API; False when a PodDisruptionBudget refuses."""
        ...

    def record_event(
        self, namespace: str, kind: str, name: str, reason: str, message: str, type_: str = "Normal"
    ) -> None: ...
