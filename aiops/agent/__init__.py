"""The investigation agent: a LangGraph graph from an incident to an RcaReport.

Deterministic by default (Prometheus + Kubernetes evidence ranked by aiops.rca); with a chat model
it may consult read-only tools and re-rank among the deterministic hypotheses. Never imports
temporalio: the Temporal activity wraps `investigate`.
"""

from aiops.agent.chat import ChatModel, ChatTurn, ModelError, ToolCall
from aiops.agent.graph import (
    AgentConfig,
    AgentDeps,
    AgentState,
    ainvestigate,
    build_graph,
    investigate,
)
from aiops.agent.ports import (
    ClusterReader,
    ClusterReadError,
    ContainerState,
    DeploymentInfo,
    EventInfo,
    MetricsSource,
    NodeCondition,
    NodeInfo,
    PodInfo,
    ReplicaSetInfo,
    SeriesLike,
)

__all__ = [
    "AgentConfig",
    "AgentDeps",
    "AgentState",
    "ChatModel",
    "ChatTurn",
    "ClusterReadError",
    "ClusterReader",
    "ContainerState",
    "DeploymentInfo",
    "EventInfo",
    "MetricsSource",
    "ModelError",
    "NodeCondition",
    "NodeInfo",
    "PodInfo",
    "ReplicaSetInfo",
    "SeriesLike",
    "ToolCall",
    "ainvestigate",
    "build_graph",
    "investigate",
]
