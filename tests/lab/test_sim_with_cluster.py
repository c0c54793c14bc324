"""The simulation over the real lab cluster (lab/aiops_lab/cluster, from the cluster branch): the
cluster's controllers and kubelet play their part, remediations applied to the cluster change
what the shop does. Skipped where the cluster package is not present."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from aiops_lab.sim.faults import Fault, FaultKind, Severity
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.traffic import Traffic

cluster_mod = pytest.importorskip("aiops_lab.cluster.cluster")
state_mod = pytest.importorskip("aiops_lab.cluster.state")
errors_mod = pytest.importorskip("aiops_lab.cluster.errors")

NS = "boutique"
MERGE = "application/merge-patch+json"


class Lab:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0
        config = state_mod.ClusterConfig(external_readiness=True, backoff_base_s=2.0)
        self.cluster: Any = cluster_mod.Cluster.boutique(config, clock=lambda: self.t)
        self.shop = Shop(self.cluster, seed=5, traffic=Traffic(50, seed=5))
        self.run(10)

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.t += 1.0
            self.cluster.tick()
            self.shop.step(self.t)

    def service(self, name: str) -> Any:
        return next(s for s in self.shop.status() if s.name == name)

    def pods(self, deployment: str) -> list[Any]:
        return [p for p in self.cluster.snapshot().pods if p.deployment == deployment]


def test_pods_become_ready_and_serve() -> None:
    lab = Lab()
    for st in lab.shop.status():
        assert st.ready == st.desired > 0, st
        assert st.error_ratio == 0, st


def test_leak_restarts_until_a_rollout_restart_replaces_the_pods() -> None:
    lab = Lab()
    lab.shop.inject(Fault(FaultKind.MEMORY_LEAK, "cartservice", Severity.HIGH), lab.t)
    lab.run(70)
    assert all(
        p.restarts >= 1 and p.last_terminated_reason == "OOMKilled" for p in lab.pods("cartservice")
    )
    lab.cluster.patch_scale(NS, "cartservice", MERGE, {"spec": {"replicas": 3}})  # wrong
    lab.run(60)
    assert sum(p.restarts for p in lab.pods("cartservice")) >= 3
    lab.cluster.patch(
        "deployments",
        NS,
        "cartservice",
        MERGE,
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}
                }
            }
        },
    )
    lab.run(90)
    pods = [p for p in lab.pods("cartservice") if not p.deleting]
    assert len(pods) == 3
    assert all(p.restarts == 0 for p in pods)


def test_surge_is_fixed_by_scaling_and_node_pressure_by_draining() -> None:
    lab = Lab()
    lab.shop.inject(Fault(FaultKind.TRAFFIC_SURGE, "frontend", Severity.MEDIUM), lab.t)
    lab.run(10)
    assert lab.service("frontend").error_ratio > 0.2
    lab.cluster.patch_scale(NS, "frontend", MERGE, {"spec": {"replicas": 5}})
    lab.run(10)
    assert lab.service("frontend").error_ratio == 0

    lab.shop.inject(Fault(FaultKind.NODE_PRESSURE, "node-a", Severity.HIGH), lab.t)
    lab.run(5)
    slow = lab.service("frontend").mean_latency_ms
    lab.cluster.patch("nodes", None, "node-a", MERGE, {"spec": {"unschedulable": True}})
    for _ in range(3):  # a drain: evict, and retry what a PodDisruptionBudget refused
        for p in lab.cluster.snapshot().pods:
            if p.node == "node-a" and not p.deleting:
                with contextlib.suppress(errors_mod.TooManyRequestsError):
                    lab.cluster.evict(p.namespace, p.name)
        lab.run(5)
    assert not [p for p in lab.cluster.snapshot().pods if p.node == "node-a" and not p.deleting]
    assert lab.service("frontend").mean_latency_ms < 0.5 * slow
