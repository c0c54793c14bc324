"""The lab's Kubernetes cluster: an in-memory object store with controllers (see cluster.py)."""

from aiops_lab.cluster.cluster import Cluster
from aiops_lab.cluster.errors import ApiError
from aiops_lab.cluster.state import ClusterConfig, NodeSpec

__all__ = ["ApiError", "Cluster", "ClusterConfig", "NodeSpec"]
