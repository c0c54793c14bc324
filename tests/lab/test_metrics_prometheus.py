"""Through a real Prometheus (the distribution's binary) scraping the lab's exporter: backfilled
history with a daily pattern joins the live series, and every fault is visible in the signals
an SRE looks at, compared with a healthy control shop scraped alongside.

One Prometheus, one shop per fault (each its own scrape job), all running in real time for a
few seconds; faults are tuned to act within seconds (e.g. a leak that OOMs in 6 s).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from aiops_lab.backfill import backfill
from aiops_lab.prometheus_config import PrometheusProcess, write_prometheus_config
from aiops_lab.sim.exporter import MetricsServer, ShopRunner, serve_metrics
from aiops_lab.sim.faults import Fault, FaultKind, Severity
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.traffic import Traffic

from tests.lab.fake_cluster import FakeCluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("prometheus") is None or shutil.which("promtool") is None,
        reason="Debian package prometheus not installed",
    ),
]

FAULTS: dict[str, Fault] = {
    "bad_rollout": Fault(FaultKind.BAD_ROLLOUT, "cartservice", Severity.MEDIUM),
    "crashloop": Fault(FaultKind.CRASHLOOP, "productcatalogservice", params={"crash_after": 0.5}),
    "memory_leak": Fault(FaultKind.MEMORY_LEAK, "adservice", params={"seconds_to_oom": 5}),
    "cpu_hog": Fault(FaultKind.CPU_HOG, "recommendationservice", Severity.HIGH),
    "latency": Fault(FaultKind.LATENCY, "productcatalogservice", Severity.MEDIUM),
    "packet_loss": Fault(FaultKind.PACKET_LOSS, "currencyservice", Severity.HIGH),
    "traffic_surge": Fault(FaultKind.TRAFFIC_SURGE, "frontend", Severity.MEDIUM),
    "node_pressure": Fault(FaultKind.NODE_PRESSURE, "node-a", Severity.MEDIUM),
    "dependency_down": Fault(FaultKind.DEPENDENCY_DOWN, "redis-cart"),
}
SETTLE_S = 5.0  # after the first scrape: rate windows fill, the leak reaches its limit


@dataclass
class Lab:
    prom: PrometheusProcess
    history_end: float

    def value(self, promql: str, at: float | None = None) -> float:
        result = self.prom.query(promql, at)
        assert len(result) == 1, (promql, result)
        return float(result[0]["value"][1])  # type: ignore[index]

    def error_ratio(self, job: str, dst: str, reporter: str = "destination") -> float:
        """As `dst`'s own sidecar counted its calls, or as its callers' did ("source"): over all
        the live samples (10 s), not 3 s, in which cartservice's ~60 calls put a 35 % error rate
        above 0.5 once in CI."""
        sel = f'job="{job}",destination_workload="{dst}",reporter="{reporter}"'
        return self.value(
            f'(sum(increase(istio_requests_total{{{sel},response_code=~"5.."}}[10s])) or vector(0))'
            f" / sum(increase(istio_requests_total{{{sel}}}[10s]))"
        )

    def p90_ms(self, job: str, dst: str, reporter: str = "destination") -> float:
        return self.value(
            "histogram_quantile(0.9, sum by (le) (rate(istio_request_duration_milliseconds_"
            f'bucket{{job="{job}",destination_workload="{dst}",reporter="{reporter}"}}[3s])))'
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("prom")
    now = time.time()
    history = backfill(tmp / "data", end=now, days=0.15, step=60, job="control")
    jobs = ["control", *FAULTS]
    clusters = {j: FakeCluster(at=now, backoff=1.0) for j in jobs}
    shops = {j: Shop(clusters[j], seed=i, traffic=Traffic(50, seed=i)) for i, j in enumerate(jobs)}
    shops["control"].continue_from(history.shop)
    inject = threading.Event()

    def ticker(job: str) -> Callable[[float], None]:
        injected = False

        def before(t: float) -> None:
            nonlocal injected
            clusters[job].at = t
            if job in FAULTS and not injected and inject.is_set():
                injected = True
                shops[job].inject(FAULTS[job], t)

        return before

    runners = [ShopRunner(shops[j], tick=0.25, before_tick=ticker(j)).start() for j in jobs]
    servers: list[MetricsServer] = [serve_metrics(shops[j]) for j in jobs]
    config = write_prometheus_config(
        tmp / "prometheus.yml", {j: s.target for j, s in zip(jobs, servers, strict=True)}
    )
    prom = PrometheusProcess(config, tmp / "data")
    # The assertions compare each fault's shop with the control shop, so faults need no
    # pre-fault baseline in Prometheus: inject now and let them develop during discovery.
    inject.set()
    try:
        prom.wait_ready()
        prom.wait_for_scrape('up{job="control"} == 1')
        time.sleep(SETTLE_S)
        yield Lab(prom, history.end)
    finally:
        prom.stop()
        for r in runners:
            r.stop()
        for s in servers:
            s.stop()
    assert all(not r.errors for r in runners), [r.errors for r in runners]


def test_backfilled_history_has_a_daily_pattern_and_continues_live(lab: Lab) -> None:
    q = (
        'sum(rate(istio_requests_total{job="control",destination_workload="frontend",'
        'reporter="destination"}[5m]))'
    )
    recent = lab.value(q, lab.history_end - 600)  # diurnal: 0.99 x the mean rps
    earlier = lab.value(q, lab.history_end - 3 * 3600)  # an eighth of a day before: 0.79 x
    assert 40 < recent < 60
    assert 0.72 < earlier / recent < 0.88
    # history and live are one series (same labels), not two
    series = lab.prom.query(
        'count_over_time(istio_requests_total{job="control",destination_workload="frontend",'
        'response_code="200",reporter="destination"}[2h])'
    )
    assert len(series) == 1
    assert float(series[0]["value"][1]) > 60 + 5  # type: ignore[index]


def test_error_faults_raise_the_error_ratio_where_they_are(lab: Lab) -> None:
    assert lab.error_ratio("control", "frontend") < 0.01
    assert lab.error_ratio("control", "cartservice") < 0.01
    assert 0.2 < lab.error_ratio("bad_rollout", "cartservice") < 0.5
    assert lab.error_ratio("bad_rollout", "frontend") > 0.1  # propagates upstream
    # Lost packets reset calls on the wire: only the callers' sidecars count them.
    assert lab.error_ratio("packet_loss", "currencyservice", reporter="source") > 0.2
    assert lab.error_ratio("packet_loss", "currencyservice") < 0.01
    assert lab.error_ratio("packet_loss", "frontend") > 0.2
    assert lab.error_ratio("dependency_down", "cartservice") > 0.9
    assert (
        lab.value(
            'kube_deployment_status_replicas_available{job="dependency_down",'
            'deployment="redis-cart"}'
        )
        == 0
    )
    assert lab.error_ratio("traffic_surge", "frontend") > 0.2


def test_latency_faults_raise_p90_and_slow_callers(lab: Lab) -> None:
    base_cat = lab.p90_ms("control", "productcatalogservice")
    base_front = lab.p90_ms("control", "frontend")
    # A delay on the catalog's network: its callers wait, its own sidecar sees nothing.
    assert lab.p90_ms("latency", "productcatalogservice", reporter="source") > base_cat + 150
    assert lab.p90_ms("latency", "productcatalogservice") < base_cat * 1.5
    assert lab.p90_ms("latency", "frontend") > base_front + 150
    assert lab.p90_ms("traffic_surge", "frontend") > 3 * base_front
    assert lab.p90_ms("node_pressure", "frontend") > 2 * base_front
    served = 'destination_workload="frontend",reporter="destination"'
    rate = lab.value(f'sum(rate(istio_requests_total{{job="traffic_surge",{served}}}[3s]))')
    assert rate > 2 * lab.value(f'sum(rate(istio_requests_total{{job="control",{served}}}[3s]))')


def test_resource_faults_show_in_cadvisor_kube_state_and_node_metrics(lab: Lab) -> None:
    def cpu_saturation(job: str) -> float:
        # The slope fitted to all the live samples (rate over 3 s read a saturated container at
        # 0.875 in CI): a scrape reads the counter as of the shop's last tick, up to a tick (more
        # on a loaded machine) behind the scrape's timestamp. Not rate over 10 s: the series is
        # younger than that, and rate divides by the whole window.
        sel = f'job="{job}",pod=~"recommendationservice-.*"'
        return lab.value(
            f"sum(deriv(container_cpu_usage_seconds_total{{{sel}}}[10s])) / "
            f"sum(container_spec_cpu_quota{{{sel}}} / "
            f"container_spec_cpu_period{{{sel}}})"
        )

    assert cpu_saturation("cpu_hog") > 0.9
    assert cpu_saturation("control") < 0.5

    leak = 'job="memory_leak",pod=~"adservice-.*"'
    peak = lab.value(f"max(max_over_time(container_memory_working_set_bytes{{{leak}}}[15s]))")
    limit = lab.value(f"max(max_over_time(container_spec_memory_limit_bytes{{{leak}}}[10s]))")
    assert peak > 0.8 * limit
    assert lab.value(f"sum(kube_pod_container_status_restarts_total{{{leak}}})") >= 1
    assert (
        lab.value(
            'sum(kube_pod_container_status_last_terminated_reason{job="memory_leak",'
            'pod=~"adservice-.*",reason="OOMKilled"})'
        )
        >= 1
    )

    crash = 'job="crashloop",pod=~"productcatalogservice-.*"'
    assert lab.value(f"sum(kube_pod_container_status_restarts_total{{{crash}}})") >= 2
    assert (
        lab.value(
            'sum(kube_pod_container_status_last_terminated_reason{job="crashloop",reason="Error"})'
        )
        >= 1
    )
    assert (
        lab.value(
            "max(max_over_time(kube_pod_container_status_waiting_reason{"
            'job="crashloop",reason="CrashLoopBackOff"}[10s]))'
        )
        == 1
    )

    def node_a(job: str, metric: str) -> float:
        sel = f'job="{job}",node="node-a"'
        return lab.value(f"sum({metric.format(sel=sel)})")

    iowait = 'rate(node_cpu_seconds_total{{{sel},mode="iowait"}}[3s])'
    assert node_a("node_pressure", iowait) > 1.0  # cores
    assert node_a("control", iowait) < 0.1
    avail = "node_memory_MemAvailable_bytes{{{sel}}}"
    assert node_a("node_pressure", avail) < 0.5 * node_a("control", avail)
