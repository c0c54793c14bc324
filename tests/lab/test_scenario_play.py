"""Every shipped scenario, played on the simulation: a fault scenario shows its fault at its
stated root cause; a control scenario stays healthy (noise included)."""

from __future__ import annotations

import pytest
from aiops_lab.scenario import SCENARIO_DIR, Scenario, load_all
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.timeline import ScenarioTimeline

from tests.lab.fake_cluster import FakeCluster

SCENARIOS = load_all(SCENARIO_DIR)
TICK = 2.0


def play(s: Scenario, until: float) -> tuple[Shop, FakeCluster, dict[str, dict[str, float]]]:
    """Run to `until` seconds after the warmup; return per-service worst signals after faults."""
    cluster = FakeCluster()
    shop = Shop(cluster, seed=s.seed)
    tl = ScenarioTimeline(shop, s, started_at=cluster.at)
    worst: dict[str, dict[str, float]] = {}
    while cluster.at < tl.fault_start + until:
        cluster.advance(TICK)
        tl.step(cluster.at)
        shop.step(cluster.at)
        if cluster.at <= tl.fault_start:
            continue
        for st in shop.status():
            w = worst.setdefault(st.name, {"errors": 0.0, "latency": 0.0, "util": 0.0})
            # As its callers saw it: a network fault shows only there.
            w["errors"] = max(w["errors"], st.callers_error_ratio)
            w["latency"] = max(w["latency"], st.callers_latency_ms)
            w["util"] = max(w["util"], st.utilisation)
    return shop, cluster, worst


@pytest.mark.parametrize("name", sorted(n for n, s in SCENARIOS.items() if s.faults))
def test_fault_scenario_shows_at_its_root_cause(name: str) -> None:
    s = SCENARIOS[name]
    _, cluster, worst = play(s, until=150.0)
    _, _, calm = play(s.model_copy(update={"faults": [], "noise": []}), until=150.0)
    cause = s.expect.root_cause
    if s.expect.fault == "node_pressure":
        on_node = {p.deployment for p in cluster.pods.values() if p.node == cause}
        assert any(worst[d]["latency"] > 2 * calm[d]["latency"] for d in on_node)
        return
    restarts = sum(p.restarts for p in cluster.pods.values() if p.deployment == cause)
    signals = {
        "errors": worst[cause]["errors"] > 0.05,
        "latency": worst[cause]["latency"] > 2 * calm[cause]["latency"],
        "saturation": worst[cause]["util"] > 0.9,
        "restarts": restarts > 0,
    }
    assert any(signals.values()), (name, worst[cause], calm[cause])


@pytest.mark.parametrize("name", sorted(n for n, s in SCENARIOS.items() if not s.faults))
def test_control_scenario_stays_healthy(name: str) -> None:
    s = SCENARIOS[name]
    _, cluster, worst = play(s, until=s.duration - s.warmup)
    assert all(w["errors"] < 0.01 for w in worst.values()), worst
    assert all(p.restarts == 0 for p in cluster.pods.values())
