"""Remediations sent through the official `kubernetes` client, over HTTP to the lab Kubernetes
API, change the simulated shop as they would change a cluster; the wrong one does not heal it.

Time is simulated: each `run(n)` advances the cluster and the shop n seconds, and a drain's
waits advance it too, so the whole story takes seconds of wall time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiops_lab.cluster.cluster import Cluster
from aiops_lab.cluster.state import ClusterConfig
from aiops_lab.kubeapi.server import start_lab_api, write_kubeconfig
from aiops_lab.sim.faults import Fault, FaultKind, Severity
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.traffic import Traffic

from aiops.integrations.kubernetes import KubernetesExecutor

NS = "boutique"


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.t = 1_700_000_000.0
        config = ClusterConfig(external_readiness=True, backoff_base_s=2.0)
        self.cluster: Any = Cluster.boutique(config, clock=lambda: self.t)
        self.api = start_lab_api(self.cluster, run_controllers=False)
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", self.api.url)
        self.kube = KubernetesExecutor.from_kubeconfig(
            str(kubeconfig),
            sleep=lambda s: self.run(max(1, round(s))),
            monotonic=lambda: self.t,
            poll_interval_s=1.0,
        )
        self.shop = Shop(self.cluster, seed=5, traffic=Traffic(50, seed=5))
        self.run(15)

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.t += 1.0
            self.cluster.tick()
            self.shop.step(self.t)

    def inject(self, kind: FaultKind, target: str) -> None:
        self.shop.inject(Fault(kind, target, Severity.HIGH), self.t)

    def service(self, name: str) -> Any:
        return next(s for s in self.shop.status() if s.name == name)

    def restarts(self, deployment: str) -> int:
        return sum(
            p.restarts
            for p in self.cluster.snapshot().pods
            if p.deployment == deployment and not p.deleting
        )


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    built = Lab(tmp_path)
    try:
        yield built
    finally:
        built.api.stop()


def test_bad_rollout_is_healed_by_undo_not_by_scaling(lab: Lab) -> None:
    lab.inject(FaultKind.BAD_ROLLOUT, "cartservice")
    lab.run(40)
    assert lab.service("cartservice").error_ratio > 0.1
    assert lab.kube.scale(NS, "cartservice", 4).changed
    lab.run(40)
    assert lab.service("cartservice").error_ratio > 0.1, "more pods of the bad revision"
    assert lab.kube.rollout_undo(NS, "cartservice", incident_id="i-1").changed
    lab.run(40)
    assert lab.service("cartservice").error_ratio == 0
    assert lab.service("frontend").error_ratio < 0.01


def test_crashloop_is_healed_by_undo(lab: Lab) -> None:
    lab.inject(FaultKind.CRASHLOOP, "productcatalogservice")
    lab.run(60)
    assert lab.restarts("productcatalogservice") >= 1
    lab.kube.scale(NS, "productcatalogservice", 3)
    lab.run(40)
    assert lab.restarts("productcatalogservice") >= 1, "scaling does not fix the config"
    lab.kube.rollout_undo(NS, "productcatalogservice", incident_id="i-2")
    lab.run(60)
    assert lab.restarts("productcatalogservice") == 0
    assert (
        lab.service("productcatalogservice").ready == lab.service("productcatalogservice").desired
    )


def test_undo_after_a_restart_of_a_bad_rollout_still_heals(lab: Lab) -> None:
    """kubectl's undo after a restart would return to the bad release (the restart added a
    revision); the executor skips revisions that differ only by a restart."""
    lab.inject(FaultKind.BAD_ROLLOUT, "cartservice")
    lab.run(40)
    lab.kube.rollout_restart(NS, "cartservice", incident_id="i-wrong")
    lab.run(40)
    assert lab.service("cartservice").error_ratio > 0.1, "a restart does not fix a release"
    lab.kube.rollout_undo(NS, "cartservice", incident_id="i-4")
    lab.run(40)
    assert lab.service("cartservice").error_ratio < 0.01


def test_memory_leak_is_healed_by_restart_not_by_scaling(lab: Lab) -> None:
    lab.inject(FaultKind.MEMORY_LEAK, "cartservice")
    lab.run(80)
    assert lab.restarts("cartservice") >= 1
    lab.kube.scale(NS, "cartservice", 3)
    lab.run(60)
    assert lab.restarts("cartservice") >= 1, "old pods keep leaking and restarting"
    lab.kube.rollout_restart(NS, "cartservice", incident_id="i-3")
    lab.run(90)
    assert lab.restarts("cartservice") == 0


def test_traffic_surge_is_healed_by_scaling_not_by_restart(lab: Lab) -> None:
    lab.inject(FaultKind.TRAFFIC_SURGE, "frontend")
    lab.run(15)
    assert lab.service("frontend").error_ratio > 0.1
    lab.kube.rollout_restart(NS, "frontend", incident_id="i-wrong")
    lab.run(30)
    assert lab.service("frontend").error_ratio > 0.1
    lab.kube.scale(NS, "frontend", 6)
    lab.run(30)
    assert lab.service("frontend").error_ratio < 0.01


def test_node_pressure_is_healed_by_cordon_and_drain(lab: Lab) -> None:
    lab.inject(FaultKind.NODE_PRESSURE, "node-a")
    lab.run(15)
    slow = lab.service("frontend").mean_latency_ms
    lab.kube.scale(NS, "frontend", 3)  # more pods, but some still land on the bad node
    lab.run(20)
    assert lab.service("frontend").mean_latency_ms > 0.5 * slow
    assert lab.kube.cordon("node-a").changed
    result = lab.kube.drain("node-a")
    assert result.ok, result.message
    lab.run(20)
    on_a = [
        p
        for p in lab.cluster.snapshot().pods
        if p.node == "node-a" and p.namespace == NS and not p.deleting
    ]
    assert on_a == []
    assert lab.service("frontend").mean_latency_ms < 0.5 * slow
