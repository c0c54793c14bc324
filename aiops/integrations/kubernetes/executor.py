"""The Kubernetes executor: the allow-listed `k8s.*` actions, through the official client, against
any kubeconfig (a real cluster or the lab API).

Every action is idempotent under retry, as Temporal activities run at least once (see
deployments.py, pods.py, nodes.py for how each one is). Every action takes `dry_run=True`, which
asks the API server to run it without persisting (`dryRun=All`), and every result's message is a
human-readable diff (before → after of the fields touched) for the approval request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiops.domain import Step, StepResult
from aiops.integrations.kubernetes.client import in_cluster_api_client, kubeconfig_api_client
from aiops.integrations.kubernetes.deployments import DeploymentActions
from aiops.integrations.kubernetes.errors import InvalidStepError
from aiops.integrations.kubernetes.nodes import NodeActions
from aiops.integrations.kubernetes.pods import PodActions

# Where a pod finds its own namespace (the service account's mount).
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubernetesExecutor(DeploymentActions, PodActions, NodeActions):
    """Runs the `k8s.*` actions. Construct with an ApiClient, or `from_kubeconfig()`."""

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, **kwargs: Any
    ) -> KubernetesExecutor:
        """From a kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."""
        return cls(kubeconfig_api_client(path, context), **kwargs)

    @classmethod
    def in_cluster(cls, **kwargs: Any) -> KubernetesExecutor:
        """From the pod's service account (when aiops runs inside the cluster); the pods of the
        namespace it runs in are its own, which a drain never evicts."""
        executor = cls(in_cluster_api_client(), **kwargs)
        if SERVICE_ACCOUNT_NAMESPACE.exists():
            executor.own_namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
        return executor

    def execute(self, step: Step, *, incident_id: str, dry_run: bool = False) -> StepResult:
        """Run one playbook step (`k8s.*` action with its rendered arguments)."""
        handler = ACTIONS.get(step.action)
        if handler is None:
            raise InvalidStepError(
                step.action, step.target, f"unknown action; allowed: {', '.join(sorted(ACTIONS))}"
            )
        return handler(self, step.args, incident_id, dry_run)

    def preview(self, steps: list[Step], *, incident_id: str) -> list[str]:
        """Server-side dry runs of the steps: the diffs to show in an approval request."""
        return [self.execute(s, incident_id=incident_id, dry_run=True).message for s in steps]


def _arg(action: str, args: dict[str, Any], *names: str, kind: type = str) -> Any:
    for name in names:
        if args.get(name) not in (None, ""):
            value = args[name]
            if kind is int and isinstance(value, str) and value.isdigit():
                value = int(value)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
                raise InvalidStepError(
                    action, str(args), f"argument {name!r} must be a {kind.__name__}, got {value!r}"
                )
            return value
    raise InvalidStepError(action, str(args), f"missing argument {' or '.join(map(repr, names))}")


def _optional(action: str, args: dict[str, Any], name: str, kind: type) -> Any:
    if args.get(name) in (None, ""):
        return None
    return _arg(action, args, name, kind=kind)


Handler = Callable[[KubernetesExecutor, dict[str, Any], str, bool], StepResult]

ACTIONS: dict[str, Handler] = {
    "k8s.rollout_restart": lambda ex, a, inc, dry: ex.rollout_restart(
        _arg("k8s.rollout_restart", a, "namespace"),
        _arg("k8s.rollout_restart", a, "name"),
        inc,
        dry_run=dry,
    ),
    "k8s.scale": lambda ex, a, inc, dry: ex.scale(
        _arg("k8s.scale", a, "namespace"),
        _arg("k8s.scale", a, "name"),
        _arg("k8s.scale", a, "replicas", kind=int),
        dry_run=dry,
    ),
    "k8s.rollout_undo": lambda ex, a, inc, dry: ex.rollout_undo(
        _arg("k8s.rollout_undo", a, "namespace"),
        _arg("k8s.rollout_undo", a, "name"),
        inc,
        to_revision=_optional("k8s.rollout_undo", a, "to_revision", int),
        dry_run=dry,
    ),
    "k8s.delete_pod": lambda ex, a, inc, dry: ex.delete_pod(
        _arg("k8s.delete_pod", a, "namespace"),
        _arg("k8s.delete_pod", a, "pod", "name"),
        dry_run=dry,
    ),
    "k8s.cordon": lambda ex, a, inc, dry: ex.cordon(
        _arg("k8s.cordon", a, "node", "name"), dry_run=dry
    ),
    "k8s.uncordon": lambda ex, a, inc, dry: ex.uncordon(
        _arg("k8s.uncordon", a, "node", "name"), dry_run=dry
    ),
    "k8s.drain": lambda ex, a, inc, dry: ex.drain(
        _arg("k8s.drain", a, "node", "name"),
        dry_run=dry,
        timeout_s=_optional("k8s.drain", a, "timeout_s", float),
        force=bool(a.get("force", False)),
    ),
}
