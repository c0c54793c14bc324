"""Everyday operations played as scenario noise over the real lab cluster: a person draining a
node, an autoscaler, a CronJob calling a backend; and a traffic surge into a backend shows in
that backend's request counters."""

from __future__ import annotations

from typing import Any

import pytest
from aiops_lab.cluster.cluster import Cluster
from aiops_lab.cluster.state import ClusterConfig
from aiops_lab.scenario import ScenarioError, parse_scenario
from aiops_lab.sim.faults import Fault, FaultKind
from aiops_lab.sim.operators import CRONJOB_SOURCE, RESTARTED_AT
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.timeline import ScenarioTimeline
from aiops_lab.sim.traffic import Traffic

T0 = 1_700_000_000.0


class Lab:
    def __init__(self, scenario: str | None = None, rps: float = 50) -> None:
        self.t = T0
        config = ClusterConfig(external_readiness=True, backoff_base_s=2.0)
        self.cluster: Any = Cluster.boutique(config, clock=lambda: self.t)
        self.shop = Shop(self.cluster, seed=5, traffic=Traffic(rps, seed=5))
        self.timeline = (
            None
            if scenario is None
            else ScenarioTimeline(self.shop, parse_scenario(scenario), started_at=self.t)
        )
        self.run(5)

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.t += 1.0
            self.cluster.tick()
            if self.timeline is not None:
                self.timeline.step(self.t)
            self.shop.step(self.t)

    def service(self, name: str) -> Any:
        return next(s for s in self.shop.status() if s.name == name)

    def on_node(self, node: str) -> list[str]:
        return [p.name for p in self.cluster.snapshot().pods if p.node == node and not p.deleting]

    def requests_into(self, target: str) -> float:
        return sum(
            h.total for (_, dst, _), h in self.shop.requests.server_view().items() if dst == target
        )


def _scenario(noise: str, duration: str = "10m", traffic: str = "{rps: 50}") -> str:
    return f"""
name: everyday
duration: {duration}
traffic: {traffic}
noise:
  - {noise}
expect: {{root_cause: none, fault: none, playbook: none}}
"""


def test_a_drain_moves_every_pod_off_the_node_and_uncordons_it_later() -> None:
    lab = Lab(_scenario("{at: 0s, kind: node_drain, target: node-b, duration: 60s}"))
    assert lab.on_node("node-b")
    lab.run(30)
    node = next(n for n in lab.cluster.snapshot().nodes if n.name == "node-b")
    assert node.unschedulable and lab.on_node("node-b") == []
    assert all(s.ready == s.desired for s in lab.shop.status())  # rescheduled elsewhere
    lab.run(40)
    node = next(n for n in lab.cluster.snapshot().nodes if n.name == "node-b")
    assert not node.unschedulable
    # What the person changed, for `aiops lab eval` to tell it from aiops' actions: the node
    # and every deployment that had a pod there (restarted), nothing else.
    assert lab.timeline is not None
    restarted = {
        f"Deployment/boutique/{d.name}"
        for d in lab.cluster.snapshot().deployments
        if d.template_annotations.get(RESTARTED_AT)
    }
    assert restarted
    assert lab.timeline.operated == {"Node/node-b", *restarted}


def test_the_autoscaler_adds_replicas_under_load_and_removes_them_after_its_window() -> None:
    lab = Lab(_scenario("{at: 0s, kind: autoscale, target: frontend, magnitude: 0.3}"), rps=80)
    start = lab.service("frontend").desired
    lab.run(40)
    grown = lab.service("frontend").desired
    assert grown > start
    lab.shop.traffic.rps = 20  # the evening: load falls
    lab.run(200)
    assert lab.service("frontend").desired == grown  # the 5-minute stabilisation window
    lab.run(200)
    assert lab.service("frontend").desired < grown
    assert lab.timeline is not None and lab.timeline.operated == {"Deployment/boutique/frontend"}


def test_a_cronjob_calls_its_backend_on_schedule_and_the_sidecar_counts_it() -> None:
    lab = Lab(
        _scenario(
            "{at: 10s, kind: cronjob, target: shippingservice, every: 120s, duration: 30s, "
            "magnitude: 3}"
        )
    )
    base = lab.service("shippingservice").rps_in
    lab.run(15)
    assert lab.service("shippingservice").rps_in > 2 * base
    before = lab.requests_into("shippingservice")
    lab.run(10)
    assert lab.requests_into("shippingservice") - before > 10 * 2 * base * 0.7
    assert any(src == CRONJOB_SOURCE for (src, _, _) in lab.shop.requests.server_view())
    lab.run(30)
    assert lab.service("shippingservice").rps_in < 1.5 * base  # the run is over
    lab.run(80)  # the next run, two minutes after the first
    assert lab.service("shippingservice").rps_in > 2 * base


def test_a_surge_into_a_backend_shows_in_its_request_counters() -> None:
    lab = Lab()
    lab.run(20)
    before = lab.requests_into("shippingservice")
    lab.run(20)
    steady = lab.requests_into("shippingservice") - before
    lab.shop.inject(Fault(FaultKind.TRAFFIC_SURGE, "shippingservice", params={"multiplier": 3}))
    before = lab.requests_into("shippingservice")
    lab.run(20)
    assert lab.requests_into("shippingservice") - before > 2.4 * steady


def test_bursts_on_any_pattern_and_bad_operation_specs_are_refused() -> None:
    s = parse_scenario(
        _scenario(
            "{at: 0s, kind: benign_rollout, target: adservice}",
            traffic="{rps: 30, bursts: {multiplier: [2, 3], seconds: [10s, 60s], every: 3m}}",
        )
    )
    assert s.traffic.bursts is not None
    bursts = s.traffic.bursts.to_bursts()
    assert (bursts.multiplier, bursts.seconds, bursts.every) == ((2, 3), (10, 60), 180)
    for noise, why in (
        ("{kind: node_drain, target: frontend}", "needs a target node"),
        ("{kind: autoscale, target: node-a}", "needs a target deployment"),
        ("{kind: autoscale, target: frontend, magnitude: 50}", "utilisation"),
        ("{kind: cronjob, target: adservice, every: 30s, duration: 60s}", "schedule"),
        ("{kind: short_spike, every: 30s}", "schedule"),
    ):
        with pytest.raises(ScenarioError, match=why):
            parse_scenario(_scenario(noise))
    with pytest.raises(ScenarioError, match="do not fit"):
        parse_scenario(
            _scenario(
                "{kind: short_spike}",
                traffic="{rps: 30, bursts: {seconds: [10s, 90s], every: 60s}}",
            )
        )


def test_a_person_scales_a_deployment_and_bursts_wait_for_their_start() -> None:
    lab = Lab(
        _scenario(
            "{at: 0s, kind: scale, target: frontend, magnitude: 4}",
            traffic="{rps: 50, bursts: {multiplier: [3, 3], seconds: [50s, 50s], every: 60s, "
            "chance: 1, after: 1h}}",
        )
    )
    lab.run(10)
    assert lab.service("frontend").desired == 4
    assert lab.service("frontend").ready == 4
    assert max(lab.shop.traffic.rate(lab.t + s) for s in range(120)) < 60  # no burst yet
    with pytest.raises(ScenarioError, match="whole number of replicas"):
        parse_scenario(_scenario("{kind: scale, target: frontend, magnitude: 2.5}"))
