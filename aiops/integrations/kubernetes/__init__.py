"""Kubernetes through the official client: the executor of the allow-listed `k8s.*` actions
(executor.py, with deployments.py, pods.py, nodes.py on the shared plumbing of client.py), the
read-only facts for planning and policy (facts.py), the investigation's reader (readers.py), and
their typed errors (errors.py) and diffs (diff.py)."""

from aiops.integrations.kubernetes.executor import ACTIONS, KubernetesExecutor
from aiops.integrations.kubernetes.releases import release_fingerprint

__all__ = ["ACTIONS", "KubernetesExecutor", "release_fingerprint"]
