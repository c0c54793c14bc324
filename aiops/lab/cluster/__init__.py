"""The lab's Kubernetes cluster: an in-memory object store with controllers (see cluster.py)."""

from aiops.lab.cluster.cluster import Cluster
from aiops.lab.cluster.errors import ApiError
from aiops.lab.cluster.state import ClusterConfig, NodeSpec

__all__ = ["ApiError", "Cluster", "ClusterConfig", "NodeSpec"]
