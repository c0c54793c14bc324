"""A minimal in-memory ClusterPort for the simulation's own tests (the real lab cluster, with its
Kubernetes API, lives in lab/aiops_lab/cluster). Rollouts replace all pods at once; a container that
exits restarts after a CrashLoopBackOff-style back-off; the clock is driven by the test."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from aiops_lab.ports import ClusterSnapshot, DeploymentState, PodState
from aiops_lab.sim.static import default_layout


@dataclass
class _Template:
    image: str
    annotations: dict[str, str]


@dataclass
class _Deployment:
    state: DeploymentState
    history: list[_Template] = field(default_factory=list)  # index = revision - 1


class FakeCluster:
    def __init__(self, at: float = 1_000_000.0, backoff: float = 10.0) -> None:
        self.at = at
        self.backoff = backoff
        base = default_layout(at, started_at=at - 600)
        self.nodes = {n.name: n for n in base.nodes}
        self.deployments = {
            d.name: _Deployment(d, [_Template(d.image, dict(d.template_annotations))])
            for d in base.deployments
        }
        self.pods = {p.name: p for p in base.pods}
        self.events: list[tuple[str, str, str]] = []
        self.exits: list[tuple[str, str]] = []
        self._n = itertools.count(1)
        self._restart_at: dict[str, float] = {}

    # --- ClusterPort ---------------------------------------------------------------------

    def snapshot(self) -> ClusterSnapshot:
        self._restart_due()  # tests may move `at` directly
        deps = []
        for d in self.deployments.values():
            ready = sum(1 for p in self.pods.values() if p.deployment == d.state.name and p.ready)
            deps.append(replace(d.state, available_replicas=ready))
        return ClusterSnapshot(self.at, list(self.nodes.values()), deps, list(self.pods.values()))

    def report_container_exit(self, namespace: str, pod: str, reason: str, exit_code: int) -> None:
        # Like the lab cluster: the restart is counted at exit; the next container starts after
        # the back-off (the first at once), and only then does started_at change.
        p = self.pods[pod]
        restarts = p.restarts + 1
        delay = 0.0 if restarts == 1 else min(self.backoff * 2 ** (restarts - 2), 300.0)
        self.pods[pod] = replace(p, restarts=restarts, last_terminated_reason=reason, ready=False)
        self._restart_at[pod] = self.at + delay
        self.exits.append((pod, reason))
        self._restart_due()

    def set_pod_ready(self, namespace: str, pod: str, ready: bool) -> None:
        if pod in self.pods:
            self.pods[pod] = replace(self.pods[pod], ready=ready)
            self._finish_rollouts()

    def rollout(
        self, namespace: str, deployment: str, image: str, annotations: dict[str, str]
    ) -> int:
        d = self.deployments[deployment]
        merged = {**d.state.template_annotations, **annotations}
        d.history.append(_Template(image, merged))
        self._apply(d, len(d.history))
        return d.state.revision

    def set_node_ready(self, node: str, ready: bool) -> None:
        self.nodes[node] = replace(self.nodes[node], ready=ready)

    def record_event(
        self, namespace: str, kind: str, name: str, reason: str, message: str, type_: str = "Normal"
    ) -> None:
        self.events.append((name, reason, message))

    def scale_deployment(self, namespace: str, deployment: str, replicas: int) -> None:
        self.scale(deployment, replicas)

    def set_unschedulable(self, node: str, unschedulable: bool) -> None:
        self.nodes[node] = replace(self.nodes[node], unschedulable=unschedulable)

    def evict_pod(self, namespace: str, pod: str) -> bool:
        if pod in self.pods:
            self.delete_pod(pod)
        return True

    # --- what remediations do ------------------------------------------------------------

    def scale(self, deployment: str, replicas: int) -> None:
        d = self.deployments[deployment]
        d.state = replace(d.state, spec_replicas=replicas)
        self._reconcile(d)

    def rollback(self, deployment: str) -> None:
        """kubectl rollout undo: the previous revision's template becomes a new revision."""
        d = self.deployments[deployment]
        prev = d.history[d.state.revision - 2]
        d.history.append(_Template(prev.image, dict(prev.annotations)))
        self._apply(d, len(d.history))

    def restart(self, deployment: str) -> None:
        """kubectl rollout restart: same template, new pods."""
        d = self.deployments[deployment]
        t = d.history[d.state.revision - 1]
        d.history.append(
            _Template(t.image, {**t.annotations, "kubectl.kubernetes.io/restartedAt": str(self.at)})
        )
        self._apply(d, len(d.history))

    def cordon(self, node: str) -> None:
        self.nodes[node] = replace(self.nodes[node], unschedulable=True)

    def drain(self, node: str) -> None:
        self.cordon(node)
        for p in list(self.pods.values()):
            if p.node == node:
                self.delete_pod(p.name)

    def delete_pod(self, name: str) -> None:
        p = self.pods.pop(name)
        self._reconcile(self.deployments[p.deployment])

    def advance(self, seconds: float) -> None:
        self.at += seconds
        self._restart_due()

    def _restart_due(self) -> None:
        for name, when in list(self._restart_at.items()):
            if name not in self.pods:
                del self._restart_at[name]
            elif when <= self.at:
                del self._restart_at[name]
                self.pods[name] = replace(self.pods[name], started_at=self.at)

    # --- controllers -----------------------------------------------------------------------

    def _apply(self, d: _Deployment, revision: int) -> None:
        """A rolling update, simplified: the new revision's pods start next to the old ones,
        which keep serving until every new pod is ready (so a crashing revision never
        replaces them, as with maxUnavailable 0)."""
        t = d.history[revision - 1]
        d.state = replace(
            d.state, revision=revision, image=t.image, template_annotations=dict(t.annotations)
        )
        for p in list(self.pods.values()):
            # pods of an abandoned revision that never became ready go at once
            if p.deployment == d.state.name and p.revision != revision and not p.ready:
                del self.pods[p.name]
        self._reconcile(d)

    def _reconcile(self, d: _Deployment) -> None:
        mine = [
            p
            for p in self.pods.values()
            if p.deployment == d.state.name and p.revision == d.state.revision
        ]
        for p in mine[d.state.spec_replicas :]:
            del self.pods[p.name]
        for _ in range(d.state.spec_replicas - len(mine)):
            n = next(self._n)
            name = f"{d.state.name}-r{d.state.revision}-{n:05d}"
            self.pods[name] = PodState(
                d.state.namespace,
                name,
                f"uid-{name}",
                d.state.name,
                self._schedule(),
                d.state.revision,
                "Running",
                False,
                0,
                None,
                self.at,
                dict(d.state.template_annotations),
                d.state.cpu_limit_cores,
                d.state.memory_limit_bytes,
            )
        self._finish_rollouts()

    def _finish_rollouts(self) -> None:
        for d in self.deployments.values():
            current = [
                p
                for p in self.pods.values()
                if p.deployment == d.state.name and p.revision == d.state.revision
            ]
            if len(current) >= d.state.spec_replicas and all(p.ready for p in current):
                for p in list(self.pods.values()):
                    if p.deployment == d.state.name and p.revision != d.state.revision:
                        del self.pods[p.name]

    def _schedule(self) -> str:
        ok = [n for n in self.nodes.values() if not n.unschedulable and n.ready]
        load = {n.name: 0 for n in ok}
        for p in self.pods.values():
            if p.node in load:
                load[p.node] += 1
        return min(sorted(load), key=lambda n: load[n])
