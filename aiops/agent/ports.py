"""What the agent needs from the outside world, as Protocols and plain typed records.

The agent never talks to the network itself: a MetricsSource (Prometheus) and a ClusterReader
(Kubernetes, read-only) are injected, so the graph runs against a real Prometheus in tests, the lab
API, or a production cluster alike. Every method here reads; there is deliberately no method that
changes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class SeriesLike(Protocol):
    """One time series of a range query (aiops.integrations.prometheus.Series fits)."""

    @property
    def labels(self) -> dict[str, str]: ...

    @property
    def timestamps(self) -> list[float]: ...

    @property
    def values(self) -> list[float]: ...


class MetricsSource(Protocol):
    def query_range(
        self, promql: str, start: datetime, end: datetime, step_s: float
    ) -> Sequence[SeriesLike]: ...


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReplicaSetInfo(_Record):
    name: str
    namespace: str
    deployment: str | None = Field(default=None, description="owning Deployment, if any")
    revision: int | None = Field(default=None, description="deployment.kubernetes.io/revision")
    created_at: datetime | None = None
    images: list[str] = Field(default_factory=list)
    replicas: int = 0
    release: str | None = Field(
        default=None,
        description="fingerprint of what the pod template runs, without restart "
        "stamps (aiops.integrations.kubernetes.release_fingerprint): equal for a restart",
    )


class DeploymentInfo(_Record):
    name: str
    namespace: str
    replicas: int = 0
    available_replicas: int = 0
    revision: int | None = None
    images: list[str] = Field(default_factory=list)


class ContainerState(_Record):
    name: str
    ready: bool = False
    restart_count: int = 0
    waiting_reason: str | None = None
    last_terminated_reason: str | None = None
    last_terminated_at: datetime | None = None
    last_exit_code: int | None = None


class PodInfo(_Record):
    name: str
    namespace: str
    node: str | None = None
    phase: str = "Unknown"
    owner_kind: str | None = None
    owner_name: str | None = None
    created_at: datetime | None = None
    containers: list[ContainerState] = Field(default_factory=list)

    @property
    def restarts(self) -> int:
        return sum(c.restart_count for c in self.containers)


class EventInfo(_Record):
    namespace: str
    reason: str
    message: str = ""
    type: str = "Normal"
    object_kind: str = ""
    object_name: str = ""
    count: int = 1
    first_at: datetime | None = None
    last_at: datetime | None = None


class NodeCondition(_Record):
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition: datetime | None = None


class NodeInfo(_Record):
    name: str
    unschedulable: bool = False
    conditions: list[NodeCondition] = Field(default_factory=list)
    internal_ip: str | None = None


class ClusterReader(Protocol):
    """Read-only view of one cluster. Implementations raise ClusterReadError when they cannot
    answer; the agent then carries on with what it has and says so in the report's notes."""

    def list_replicasets(self, namespace: str) -> list[ReplicaSetInfo]: ...

    def list_deployments(self, namespace: str) -> list[DeploymentInfo]: ...

    def list_pods(self, namespace: str) -> list[PodInfo]: ...

    def list_events(self, namespace: str) -> list[EventInfo]: ...

    def list_nodes(self) -> list[NodeInfo]: ...

    def pod_logs(self, namespace: str, pod: str, *, tail_lines: int = 200) -> str: ...


class ClusterReadError(Exception):
    """The cluster could not be read; the message says what and how to fix it."""
