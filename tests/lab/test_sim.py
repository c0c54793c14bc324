"""The shop simulation driven tick by tick over the in-memory cluster: faults show up where an
SRE would look, the right remediation heals them and a wrong one does not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiops_lab.ports import BEHAVIOUR_ANNOTATION
from aiops_lab.scenario import parse_scenario
from aiops_lab.sim.exposition import render_text
from aiops_lab.sim.faults import Fault, FaultKind, NoiseKind, Severity
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.timeline import ScenarioTimeline
from aiops_lab.sim.traffic import Traffic

from tests.lab.fake_cluster import FakeCluster


def make(seed: int = 1, rps: float = 50.0) -> tuple[Shop, FakeCluster]:
    cluster = FakeCluster()
    shop = Shop(cluster, seed=seed, traffic=Traffic(rps, seed=seed))
    run(shop, cluster, 5)
    return shop, cluster


def run(
    shop: Shop, cluster: FakeCluster, seconds: int, each: Callable[[int], None] | None = None
) -> None:
    for i in range(seconds):
        cluster.advance(1.0)
        shop.step(cluster.at)
        if each is not None:
            each(i)


def samples(shop: Shop, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Samples of `name` with these labels; `deployment=` selects pods of a deployment by
    name, as one does for cAdvisor series (the container is called `server`)."""
    deployment = labels.pop("deployment", None) if name.startswith("container_") else None
    out = []
    for fam in shop.families():
        for n, lb, v in fam.samples:
            d = dict(lb)
            if (
                n == name
                and all(d.get(k) == want for k, want in labels.items())
                and (deployment is None or d["pod"].startswith(deployment + "-"))
            ):
                out.append((d, v))
    return out


def total(shop: Shop, name: str, **labels: str) -> float:
    return sum(v for _, v in samples(shop, name, **labels))


class Window:
    """Requests and latency seen by destination `dst` over a window, from istio counters: as its
    own sidecar counted them (`reporter="destination"`), or as its callers' did ("source")."""

    def __init__(
        self,
        shop: Shop,
        cluster: FakeCluster,
        dst: str,
        seconds: int,
        reporter: str = "destination",
    ) -> None:
        def counts() -> tuple[float, float, float]:
            who = {"destination_workload": dst, "reporter": reporter}
            return (
                total(shop, "istio_requests_total", **who),
                total(shop, "istio_requests_total", **who, response_code="200"),
                total(shop, "istio_request_duration_milliseconds_sum", **who),
            )

        a = counts()
        run(shop, cluster, seconds)
        b = counts()
        self.requests = b[0] - a[0]
        self.errors = self.requests - (b[1] - a[1])
        self.error_ratio = self.errors / self.requests if self.requests else 1.0
        self.mean_ms = (b[2] - a[2]) / self.requests if self.requests else 0.0


def pods_of(cluster: FakeCluster, deployment: str) -> list[str]:
    return sorted(p.name for p in cluster.pods.values() if p.deployment == deployment)


def test_same_seed_same_metrics_and_another_seed_differs() -> None:
    texts = []
    for seed in (3, 3, 4):
        shop, cluster = make(seed)
        shop.inject(Fault(FaultKind.PACKET_LOSS, "currencyservice"), cluster.at)
        run(shop, cluster, 20)
        texts.append(render_text(shop.families()))
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_healthy_shop_serves_without_errors_and_latency_adds_up_the_call_graph() -> None:
    shop, cluster = make()
    front = Window(shop, cluster, "frontend", 30)
    catalog = Window(shop, cluster, "productcatalogservice", 30)
    assert front.requests == pytest.approx(50 * 30, rel=0.1)
    assert front.error_ratio == 0
    assert catalog.error_ratio == 0
    assert front.mean_ms > 3 * catalog.mean_ms  # the frontend waits for its callees
    assert all(p.ready for p in cluster.pods.values())
    assert total(shop, "container_cpu_cfs_periods_total", deployment="frontend") > 0
    assert total(shop, "container_cpu_cfs_throttled_periods_total", deployment="frontend") == 0
    avail = {
        d["deployment"]: v for d, v in samples(shop, "kube_deployment_status_replicas_available")
    }
    assert avail["frontend"] == 2


def test_memory_leak_ends_in_oomkilled_and_only_a_restart_heals_it() -> None:
    shop, cluster = make()
    shop.inject(Fault(FaultKind.MEMORY_LEAK, "cartservice", Severity.HIGH), cluster.at)
    limit = samples(shop, "container_spec_memory_limit_bytes", deployment="cartservice")[0][1]
    peak = 0.0

    def watch(_: int) -> None:
        nonlocal peak
        peak = max(
            [peak]
            + [
                v
                for _, v in samples(
                    shop, "container_memory_working_set_bytes", deployment="cartservice"
                )
            ]
        )

    run(shop, cluster, 70, watch)
    assert peak > 0.9 * limit
    assert "OOMKilled" in {r for _, r in cluster.exits}
    reasons = [
        (d, v)
        for d, v in samples(shop, "kube_pod_container_status_last_terminated_reason")
        if d["pod"].startswith("cartservice-")
    ]
    assert {d["reason"] for d, _ in reasons} == {"OOMKilled"}
    assert sum(p.restarts for p in cluster.pods.values() if p.deployment == "cartservice") >= 2
    assert (
        sum(
            v
            for d, v in samples(shop, "kube_pod_container_status_restarts_total")
            if d["pod"].startswith("cartservice-")
        )
        >= 2
    )

    # Wrong remedy: more replicas. The leaking pods keep leaking and being killed.
    cluster.scale("cartservice", 4)
    before = len(cluster.exits)
    run(shop, cluster, 120)
    assert len(cluster.exits) > before

    # Right remedy: a rollout restart replaces the leaking pods.
    cluster.restart("cartservice")
    before = len(cluster.exits)
    run(shop, cluster, 150)
    assert len(cluster.exits) == before
    memory = [
        v for _, v in samples(shop, "container_memory_working_set_bytes", deployment="cartservice")
    ]
    assert len(memory) == 4
    assert max(memory) < 0.5 * limit


def test_cpu_hog_saturates_the_container_and_only_a_restart_heals_it() -> None:
    shop, cluster = make()
    base = Window(shop, cluster, "productcatalogservice", 20)
    shop.inject(Fault(FaultKind.CPU_HOG, "productcatalogservice", Severity.HIGH), cluster.at)
    run(shop, cluster, 5)
    before = {
        d["pod"]: v
        for d, v in samples(
            shop, "container_cpu_usage_seconds_total", deployment="productcatalogservice"
        )
    }
    hot = Window(shop, cluster, "productcatalogservice", 20)
    after = {
        d["pod"]: v
        for d, v in samples(
            shop, "container_cpu_usage_seconds_total", deployment="productcatalogservice"
        )
    }
    for pod, v in after.items():
        assert (v - before[pod]) / 20 > 0.95 * 0.2  # pinned at its 0.2-core limit
    periods = total(shop, "container_cpu_cfs_periods_total", deployment="productcatalogservice")
    throttled = total(
        shop, "container_cpu_cfs_throttled_periods_total", deployment="productcatalogservice"
    )
    assert throttled > 0.2 * periods  # throttled since the hog began (a quarter of the run)
    assert hot.mean_ms > 5 * base.mean_ms
    assert hot.error_ratio > 0.1  # overloaded pods shed

    cluster.scale("productcatalogservice", 4)  # wrong: the hogged pods still get traffic
    run(shop, cluster, 5)
    assert Window(shop, cluster, "productcatalogservice", 20).mean_ms > 3 * base.mean_ms

    cluster.restart("productcatalogservice")
    run(shop, cluster, 5)
    healed = Window(shop, cluster, "productcatalogservice", 20)
    assert healed.error_ratio == 0
    assert healed.mean_ms < 1.5 * base.mean_ms


def test_bad_rollout_is_a_new_revision_whose_errors_a_rollback_removes() -> None:
    shop, cluster = make()
    fault = shop.inject(Fault(FaultKind.BAD_ROLLOUT, "cartservice", Severity.MEDIUM), cluster.at)
    dep = cluster.deployments["cartservice"].state
    assert fault.revision == dep.revision == 2
    assert dep.image.endswith(":v0.10.3")
    assert BEHAVIOUR_ANNOTATION in dep.template_annotations
    run(shop, cluster, 5)
    bad = Window(shop, cluster, "cartservice", 30)
    assert 0.2 < bad.error_ratio < 0.5
    codes = {
        d["response_code"]
        for d, v in samples(shop, "istio_requests_total", destination_workload="cartservice")
        if v
    }
    assert "500" in codes
    assert Window(shop, cluster, "frontend", 30).error_ratio > 0.1  # errors propagate up

    cluster.rollback("cartservice")
    run(shop, cluster, 5)
    assert Window(shop, cluster, "cartservice", 30).error_ratio == 0


def test_crashloop_revision_never_becomes_ready_until_rolled_back() -> None:
    shop, cluster = make()
    shop.inject(Fault(FaultKind.CRASHLOOP, "productcatalogservice"), cluster.at)
    run(shop, cluster, 90)
    new = [
        p
        for p in cluster.pods.values()
        if p.deployment == "productcatalogservice" and p.revision == 2
    ]
    assert len(new) == 2
    assert all(not p.ready and p.restarts >= 2 for p in new)
    assert {r for _, r in cluster.exits} == {"Error"}
    assert samples(shop, "kube_pod_container_status_waiting_reason", reason="CrashLoopBackOff")
    # the rolling update keeps the old pods serving: users see nothing, restarts say it all
    assert Window(shop, cluster, "frontend", 20).error_ratio == 0

    cluster.rollback("productcatalogservice")
    run(shop, cluster, 10)
    pods = [p for p in cluster.pods.values() if p.deployment == "productcatalogservice"]
    assert all(p.ready and p.restarts == 0 for p in pods)
    exits = len(cluster.exits)
    run(shop, cluster, 30)
    assert len(cluster.exits) == exits


def test_traffic_surge_saturates_the_frontend_and_more_replicas_fix_it() -> None:
    shop, cluster = make()
    base = Window(shop, cluster, "frontend", 20)
    shop.inject(Fault(FaultKind.TRAFFIC_SURGE, "frontend", Severity.MEDIUM), cluster.at)
    surge = Window(shop, cluster, "frontend", 20)
    assert surge.requests > 2.5 * base.requests
    assert surge.error_ratio > 0.2
    assert surge.mean_ms > 5 * base.mean_ms

    cluster.restart("frontend")  # wrong: new pods, same capacity
    run(shop, cluster, 5)
    assert Window(shop, cluster, "frontend", 20).error_ratio > 0.2

    cluster.scale("frontend", 5)
    run(shop, cluster, 5)
    scaled = Window(shop, cluster, "frontend", 20)
    assert scaled.error_ratio == 0
    assert scaled.mean_ms < 2 * base.mean_ms


def test_node_pressure_degrades_pods_on_the_node_until_they_are_moved_off() -> None:
    shop, cluster = make()
    base = Window(shop, cluster, "frontend", 20)
    shop.inject(Fault(FaultKind.NODE_PRESSURE, "node-a", Severity.MEDIUM), cluster.at)
    bad = Window(shop, cluster, "frontend", 20)
    assert bad.mean_ms > 3 * base.mean_ms
    avail = {d["node"]: v for d, v in samples(shop, "node_memory_MemAvailable_bytes")}
    assert avail["node-a"] < 0.5 * avail["node-b"]

    cluster.restart("checkoutservice")  # wrong: the pods land anywhere, node-a stays hot
    run(shop, cluster, 5)
    assert Window(shop, cluster, "frontend", 20).mean_ms > 3 * base.mean_ms

    cluster.drain("node-a")
    run(shop, cluster, 5)
    assert all(p.node != "node-a" for p in cluster.pods.values())
    assert Window(shop, cluster, "frontend", 20).mean_ms < 1.5 * base.mean_ms


def test_latency_fault_delays_the_wire_callers_wait_the_target_spends_no_more() -> None:
    """A network delay on the target's pod, as chaos tools inject it: its callers' sidecars see
    every call take 250 ms more, its own sidecar sees nothing, and the callers slow down."""
    shop, cluster = make()
    base_cat = Window(shop, cluster, "productcatalogservice", 20)
    base_waited = Window(shop, cluster, "productcatalogservice", 20, reporter="source")
    base_front = Window(shop, cluster, "frontend", 20)
    shop.inject(Fault(FaultKind.LATENCY, "productcatalogservice", Severity.MEDIUM), cluster.at)
    cat = Window(shop, cluster, "productcatalogservice", 20)
    waited = Window(shop, cluster, "productcatalogservice", 20, reporter="source")
    front = Window(shop, cluster, "frontend", 20)
    assert cat.mean_ms < base_cat.mean_ms * 1.3  # its own proxy: flat
    assert waited.mean_ms > base_waited.mean_ms + 200
    assert front.mean_ms > base_front.mean_ms + 200
    assert cat.error_ratio == 0
    assert front.error_ratio == 0


def test_packet_loss_resets_calls_only_the_callers_see_and_errors_propagate_upstream() -> None:
    shop, cluster = make()
    shop.inject(
        Fault(FaultKind.PACKET_LOSS, "currencyservice", Severity.MEDIUM, duration=90), cluster.at
    )
    cur = Window(shop, cluster, "currencyservice", 30)
    seen = Window(shop, cluster, "currencyservice", 30, reporter="source")
    front = Window(shop, cluster, "frontend", 20)
    assert cur.error_ratio == 0  # it served every call that reached it
    assert 0.05 < seen.error_ratio < 0.2  # its callers saw 10 % reset
    assert seen.requests > cur.requests
    assert front.error_ratio > 0.05
    assert samples(
        shop,
        "istio_requests_total",
        reporter="source",
        destination_workload="currencyservice",
        response_code="503",
    )
    run(shop, cluster, 20)  # the fault lasts 90 s
    assert Window(shop, cluster, "frontend", 20).error_ratio == 0


def test_dependency_down_makes_redis_unavailable_and_cart_fail() -> None:
    shop, cluster = make()
    shop.inject(Fault(FaultKind.DEPENDENCY_DOWN, "redis-cart", duration=60), cluster.at)
    run(shop, cluster, 3)
    assert not any(p.ready for p in cluster.pods.values() if p.deployment == "redis-cart")
    cart = Window(shop, cluster, "cartservice", 20)
    assert cart.error_ratio > 0.9
    refused = samples(
        shop,
        "istio_requests_total",
        reporter="source",
        destination_workload="redis-cart",
        response_code="503",
    )
    assert refused
    assert refused[0][0]["response_flags"] == "UH"
    run(shop, cluster, 45)
    assert all(p.ready for p in cluster.pods.values() if p.deployment == "redis-cart")
    assert Window(shop, cluster, "cartservice", 20).error_ratio == 0


def test_counters_are_monotonic_and_reset_with_a_new_container() -> None:
    shop, cluster = make()
    shop.inject(Fault(FaultKind.MEMORY_LEAK, "adservice", Severity.HIGH), cluster.at)
    seen: dict[tuple[str, ...], float] = {}
    resets = 0

    def check(_: int) -> None:
        nonlocal resets
        for fam in shop.families():
            if fam.type not in ("counter", "histogram"):
                continue
            for name, lb, v in fam.samples:
                key = (name, *(f"{k}={val}" for k, val in lb))
                if key in seen and v < seen[key]:
                    assert name.startswith("container_cpu_"), key  # cAdvisor, per container
                    resets += 1
                seen[key] = v

    run(shop, cluster, 90, check)
    assert resets >= 1  # the OOM-killed adservice container restarted from zero


def test_benign_rollout_ships_a_revision_without_errors() -> None:
    shop, cluster = make()
    shop.noise(NoiseKind.BENIGN_ROLLOUT, "adservice", cluster.at)
    assert cluster.deployments["adservice"].state.revision == 2
    run(shop, cluster, 5)
    assert Window(shop, cluster, "adservice", 20).error_ratio == 0


def test_timeline_injects_faults_after_the_warmup() -> None:
    scenario = parse_scenario("""
name: t
seed: 5
warmup: 10s
duration: 60s
traffic: {rps: 40, pattern: steady}
faults: [{at: 5s, kind: bad_rollout, target: cartservice, severity: high}]
noise: [{at: 0s, kind: short_spike, duration: 5s, magnitude: 2}]
expect: {root_cause: cartservice, fault: bad_rollout, playbook: rollback-deployment}
""")
    shop, cluster = make()
    tl = ScenarioTimeline(shop, scenario, started_at=cluster.at)
    start = cluster.at
    run(shop, cluster, 14, lambda _: tl.step(cluster.at))
    assert cluster.at - start == 14
    assert not tl.injected
    assert shop.traffic.rate(start + 12) > 1.5 * 40  # the spike
    run(shop, cluster, 2, lambda _: tl.step(cluster.at))
    assert [f.fault.kind for f in tl.injected] == [FaultKind.BAD_ROLLOUT]
    assert cluster.deployments["cartservice"].state.revision == 2
    assert not tl.done(cluster.at)
    assert tl.done(start + 60)


def test_a_finished_scenario_ends_its_faults() -> None:
    scenario = parse_scenario("""
name: t
warmup: 0s
duration: 30s
traffic: {rps: 50, pattern: steady}
faults: [{at: 0s, kind: latency, target: cartservice, severity: high}]
expect: {root_cause: cartservice, fault: latency, playbook: escalate}
""")
    shop, cluster = make()
    tl = ScenarioTimeline(shop, scenario, started_at=cluster.at)
    run(shop, cluster, 10, lambda _: tl.step(cluster.at))
    assert Window(shop, cluster, "cartservice", 10).mean_ms > 500
    run(shop, cluster, 15, lambda _: tl.step(cluster.at))
    assert tl.finished
    assert not shop.faults
    assert Window(shop, cluster, "cartservice", 10).mean_ms < 20
