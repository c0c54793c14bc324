"""Everyday operations a real cluster has that are not faults: a person draining a node or
scaling a deployment, a HorizontalPodAutoscaler, a CronJob calling a backend on its schedule.

They act through the lab's Kubernetes API (the cluster port) the way kubectl and the controllers
do, so the monitoring sees what it would see in a real cluster: pods evicted and rescheduled,
replicas added and removed, a batch of requests arriving from a workload outside the call graph.
A scenario starts them as noise (`node_drain`, `autoscale`, `cronjob`); the timeline steps them
every tick and stops them when the scenario ends.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from aiops_lab.sim.faults import NoiseKind
from aiops_lab.sim.shop import Shop

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
#: kubectl drain retries an eviction a PodDisruptionBudget refused every 5 s.
DRAIN_RETRY_S = 5.0
#: The HPA controller's sync period, its tolerance, its scale-down stabilisation window
#: (Kubernetes' defaults) and how far above the starting replicas it may go.
HPA_SYNC_S = 15.0
HPA_TOLERANCE = 0.1
HPA_DOWNSCALE_WINDOW_S = 300.0
HPA_MAX_FACTOR = 3
CRONJOB_SOURCE = "batch-report"


class Operator(Protocol):
    #: The objects it changed, as `aiops lab eval` names them ("Deployment/<ns>/<name>",
    #: "Node/<name>"), so the evaluation tells a person's or a controller's changes from
    #: anything else that changed the cluster.
    changed: set[str]

    def step(self, now: float) -> None: ...

    def stop(self, now: float) -> None: ...


@dataclass
class NodeDrain:
    """Node maintenance without downtime, the way careful operators script it: cordon the
    node, `kubectl rollout restart` every deployment with a pod there (the rolling update
    starts the replacements elsewhere before the old pods go, so a single-replica service
    never stops serving), then `kubectl drain --ignore-daemonsets` for what is left (evict,
    retry what a disruption budget refuses), and `kubectl uncordon` after `duration` (None:
    when the scenario ends)."""

    shop: Shop
    node: str
    until: float | None
    cordoned: bool = False
    restarted: bool = False
    next_try: float = 0.0
    changed: set[str] = field(default_factory=set)

    def step(self, now: float) -> None:
        cluster = self.shop.cluster
        if not self.cordoned:
            cluster.set_unschedulable(self.node, True)
            self.cordoned = True
            self.changed.add(f"Node/{self.node}")
        if self.until is not None and now >= self.until:
            self.stop(now)
            return
        snap = cluster.snapshot()
        if not self.restarted:
            self.restarted = True
            self.next_try = now + DRAIN_RETRY_S
            on_node = {(p.namespace, p.deployment) for p in snap.pods if p.node == self.node}
            for d in snap.deployments:
                if (d.namespace, d.name) in on_node:
                    cluster.rollout(d.namespace, d.name, d.image, {RESTARTED_AT: f"{now:.0f}"})
                    self.changed.add(f"Deployment/{d.namespace}/{d.name}")
            return
        if now < self.next_try:
            return
        self.next_try = now + DRAIN_RETRY_S
        for pod in snap.pods:
            if pod.node == self.node and not pod.deleting:
                cluster.evict_pod(pod.namespace, pod.name)

    def stop(self, now: float) -> None:
        if self.cordoned:
            self.shop.cluster.set_unschedulable(self.node, False)
            self.cordoned = False
        self.until = now  # done: later steps change nothing
        self.next_try = math.inf


@dataclass
class Autoscaler:
    """A HorizontalPodAutoscaler on CPU: every sync period, desired = ceil(ready x utilisation
    / target), outside a 10 % tolerance, between the replicas it started with and three times
    that; scaling down takes the highest recommendation of the last 5 minutes."""

    shop: Shop
    deployment: str
    target: float
    until: float | None = None  # removed then (None: when the scenario ends)
    minimum: int = 0
    next_sync: float = 0.0
    recommendations: deque[tuple[float, int]] = field(default_factory=deque)
    changed: set[str] = field(default_factory=set)

    def step(self, now: float) -> None:
        if self.until is not None and now >= self.until:
            self.stop(now)
        if now < self.next_sync:
            return
        self.next_sync = now + HPA_SYNC_S
        status = next(s for s in self.shop.status() if s.name == self.deployment)
        if not self.minimum:
            self.minimum = max(status.desired, 1)
        if not status.ready:
            return
        ratio = status.utilisation / self.target
        want = status.desired
        if abs(ratio - 1.0) > HPA_TOLERANCE:
            want = math.ceil(status.ready * ratio)
        want = min(max(want, self.minimum), HPA_MAX_FACTOR * self.minimum)
        self.recommendations.append((now, want))
        while self.recommendations[0][0] < now - HPA_DOWNSCALE_WINDOW_S:
            self.recommendations.popleft()
        if want < status.desired:
            want = max(r for _, r in self.recommendations)
        if want != status.desired:
            self.shop.cluster.scale_deployment(self.shop.namespace, self.deployment, want)
            self.changed.add(f"Deployment/{self.shop.namespace}/{self.deployment}")

    def stop(self, now: float) -> None:
        self.next_sync = math.inf  # the autoscaler is removed; replicas stay where they are


@dataclass
class CronJob:
    """A job that runs every `every` seconds for `duration` seconds and meanwhile calls
    `target` at `multiplier - 1` times the rate it had when the job started."""

    shop: Shop
    target: str
    every: float
    duration: float
    multiplier: float
    next_run: float
    running_until: float | None = None
    changed: set[str] = field(default_factory=set)  # calls a backend; changes no object

    def step(self, now: float) -> None:
        key = (CRONJOB_SOURCE, self.target)
        if self.running_until is not None and now >= self.running_until:
            self.shop.external.pop(key, None)
            self.running_until = None
        if now < self.next_run:
            return
        rate = next(s.rps_in for s in self.shop.status() if s.name == self.target)
        if rate <= 0:
            return  # the shop has not served a tick yet: start on the next one
        self.next_run += self.every * max(math.floor((now - self.next_run) / self.every) + 1, 1)
        self.shop.external[key] = rate * (self.multiplier - 1.0)
        self.running_until = now + self.duration

    def stop(self, now: float) -> None:
        self.shop.external.pop((CRONJOB_SOURCE, self.target), None)
        self.next_run = math.inf
        self.running_until = None


@dataclass
class Scale:
    """`kubectl scale deployment/NAME --replicas=N`, once."""

    shop: Shop
    deployment: str
    replicas: int
    done: bool = False
    changed: set[str] = field(default_factory=set)

    def step(self, now: float) -> None:
        if not self.done:
            self.done = True
            self.shop.cluster.scale_deployment(self.shop.namespace, self.deployment, self.replicas)
            self.changed.add(f"Deployment/{self.shop.namespace}/{self.deployment}")

    def stop(self, now: float) -> None:
        self.done = True


def start(
    shop: Shop,
    kind: NoiseKind,
    target: str | None,
    now: float,
    duration: float | None,
    magnitude: float | None,
    every: float | None,
) -> Operator:
    """The operator a noise entry of an everyday-operations kind starts."""
    if target is None:
        raise ValueError(f"{kind.value} needs a target")
    if kind is NoiseKind.NODE_DRAIN:
        return NodeDrain(shop, target, None if duration is None else now + duration)
    if kind is NoiseKind.AUTOSCALE:
        return Autoscaler(
            shop,
            target,
            magnitude if magnitude is not None else 0.5,
            None if duration is None else now + duration,
        )
    if kind is NoiseKind.CRONJOB:
        return CronJob(
            shop,
            target,
            every if every is not None else 600.0,
            duration if duration is not None else 60.0,
            magnitude if magnitude is not None else 2.0,
            next_run=now,
        )
    if kind is NoiseKind.SCALE:
        if magnitude is None:
            raise ValueError("scale needs a magnitude: the replicas to scale to")
        return Scale(shop, target, round(magnitude))
    raise ValueError(f"{kind.value} is not an everyday operation")


OPERATIONS = frozenset(
    {NoiseKind.NODE_DRAIN, NoiseKind.AUTOSCALE, NoiseKind.CRONJOB, NoiseKind.SCALE}
)
