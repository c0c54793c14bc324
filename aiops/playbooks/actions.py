"""The allow-listed actions a playbook step may name, and the arguments each one takes.

This is the contract with the executor (aiops/integrations/kubernetes/): a rendered Step carries
exactly these argument names, plus `kind`, which the renderer always sets so that `Step.target`
reads `Deployment/ns/name`, `Pod/ns/name` or `Node/name`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ArgType = Literal["name", "int", "float", "str"]


@dataclass(frozen=True)
class ActionSpec:
    kind: Literal["Deployment", "Pod", "Node"]
    required: dict[str, ArgType]
    optional: dict[str, ArgType] = field(default_factory=dict)
    description: str = ""


ACTIONS: dict[str, ActionSpec] = {
    "k8s.rollout_restart": ActionSpec(
        "Deployment",
        {"namespace": "name", "name": "name"},
        {"incident_id": "str"},
        "restart every pod of a Deployment (idempotent: keyed by incident and run)",
    ),
    "k8s.scale": ActionSpec(
        "Deployment",
        {"namespace": "name", "name": "name", "replicas": "int"},
        {},
        "set a Deployment's replicas to N",
    ),
    "k8s.rollout_undo": ActionSpec(
        "Deployment",
        {"namespace": "name", "name": "name"},
        {"to_revision": "int"},
        "roll a Deployment back to its previous revision",
    ),
    "k8s.delete_pod": ActionSpec(
        "Pod",
        {"namespace": "name", "name": "name"},
        {"grace_period_s": "int"},
        "delete one pod so its controller replaces it",
    ),
    "k8s.cordon": ActionSpec("Node", {"node": "name"}, {}, "mark a node unschedulable"),
    "k8s.drain": ActionSpec(
        "Node",
        {"node": "name"},
        {"grace_period_s": "int", "timeout_s": "int"},
        "evict a node's pods through the eviction API (respects PodDisruptionBudgets)",
    ),
}

# Kubernetes object names (RFC 1123 subdomain). Rendered names are checked against it so a value
# taken from a report can never smuggle quotes or braces into a PromQL query or an API path.
K8S_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
