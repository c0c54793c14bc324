"""The lab's Kubernetes cluster: an in-memory object store with controllers. `Cluster` (cluster.py)
is built in layers: core.py (state, lock, reconcile loop), api.py (objects), subresources.py
(scale, eviction, logs), cluster.py (the simulation's port and seeding)."""

from aiops_lab.cluster.cluster import Cluster
from aiops_lab.cluster.errors import ApiError
from aiops_lab.cluster.state import ClusterConfig, NodeSpec

__all__ = ["ApiError", "Cluster", "ClusterConfig", "NodeSpec"]
