"""Every lab fault shows on the signal that finds it in every metrics flavour: each shop's
request metrics, simulated offline (one shop per flavour and fault, the same seed per fault, so
the same requests in every flavour) and backfilled into a real Prometheus, read through the
metric profiles' signals. Detection, investigation and verification read these same signals, so
what the Istio lab proves of a fault holds for OpenTelemetry and Linkerd; the CI lab eval and
the README's side-by-side evaluation run the live system on the OpenTelemetry flavour."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiops_lab.sim.exposition import render_openmetrics_samples
from aiops_lab.sim.faults import Fault, FaultKind, Severity
from aiops_lab.sim.flavors import flavor_names
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.traffic import Traffic

from aiops.config import PrometheusSettings
from aiops.integrations.prometheus import Prometheus
from aiops.profiles import builtin_assembly
from tests.lab.fake_cluster import FakeCluster
from tests.servers import backfilled_prometheus

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="Debian package prometheus not installed"
)

FAULTS: dict[str, Fault] = {
    "bad_rollout": Fault(FaultKind.BAD_ROLLOUT, "cartservice", Severity.MEDIUM),
    # no pod of the catalog serves: only its callers count the refused calls (the crash-looping
    # release of issue 18; the lab's crashloop keeps the old pods serving, as a rolling update
    # does, and shows in restarts and readiness, the same in every flavour)
    "unserved": Fault(FaultKind.DEPENDENCY_DOWN, "productcatalogservice"),
    "latency": Fault(FaultKind.LATENCY, "productcatalogservice", Severity.MEDIUM),
    "packet_loss": Fault(FaultKind.PACKET_LOSS, "currencyservice", Severity.HIGH),
    "traffic_surge": Fault(FaultKind.TRAFFIC_SURGE, "frontend", Severity.MEDIUM),
    "node_pressure": Fault(FaultKind.NODE_PRESSURE, "node-a", Severity.MEDIUM),
    "dependency_down": Fault(FaultKind.DEPENDENCY_DOWN, "redis-cart"),
    "cpu_hog": Fault(FaultKind.CPU_HOG, "recommendationservice", Severity.HIGH),
}
# (signal, workload whose series shows the fault, how far from the control it must be)
SYMPTOMS: dict[str, tuple[str, str, str]] = {
    "bad_rollout": ("error_ratio", "cartservice", "+0.2"),
    "unserved": ("error_ratio", "productcatalogservice", "+0.9"),  # its callers' view
    # a slow network into the catalog: its own proxy sees nothing, its caller waits
    "latency": ("latency_p99", "frontend", "+0.1"),
    "packet_loss": ("error_ratio", "currencyservice", "+0.2"),
    "traffic_surge": ("request_rate", "frontend", "x2"),
    "node_pressure": ("latency_p99", "frontend", "x2"),
    "dependency_down": ("error_ratio", "cartservice", "+0.9"),  # redis has no request metrics
    "cpu_hog": ("latency_p99", "recommendationservice", "x2"),
}
WARM_S, FAULT_S, STEP_S = 20, 40, 2


@dataclass(frozen=True)
class Recorded:
    prometheus: Prometheus
    end: float

    def value(self, signal: str, flavor: str, fault: str, workload: str) -> float:
        sig = builtin_assembly().by_name()[signal]
        promql = sig.render(
            {"job": f"{flavor}-{fault}", "workload": workload}, "30s", guarded=False
        )
        (series,) = self.prometheus.query(promql, at=datetime.fromtimestamp(self.end, UTC))
        return series.values[-1]


def record(flavor: str, fault: str, seed: int, start: float) -> str:
    cluster = FakeCluster(at=start, backoff=1.0)
    shop = Shop(cluster, seed=seed, traffic=Traffic(50, seed=seed), metrics=flavor)
    extra = (("instance", "lab"), ("job", f"{flavor}-{fault}"))
    out = []
    for tick in range(1, WARM_S + FAULT_S + 1):
        cluster.advance(1)
        if tick == WARM_S and fault in FAULTS:
            shop.inject(FAULTS[fault], cluster.at)
        shop.step(cluster.at)
        if tick % STEP_S == 0:  # the request families: what differs between flavours
            families = shop.flavor.render(shop.requests, shop.namespace)
            out.append(render_openmetrics_samples(families, cluster.at, extra))
    return "".join(out)


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    start = float(int(time.time()) - WARM_S - FAULT_S - 30)
    with tempfile.TemporaryDirectory(prefix="aiops-flavor-faults-") as tmp:
        folder = Path(tmp)
        source = folder / "shops.om"
        with source.open("w") as out:
            for flavor in flavor_names():
                for seed, fault in enumerate(["control", *FAULTS]):
                    out.write(record(flavor, fault, seed, start))
            out.write("# EOF\n")
        with backfilled_prometheus(source) as prom:
            yield Recorded(Prometheus(PrometheusSettings(url=prom.url)), start + WARM_S + FAULT_S)


@pytest.mark.parametrize("fault", sorted(SYMPTOMS))
def test_each_fault_shows_on_its_signal_in_every_flavour(recorded: Recorded, fault: str) -> None:
    signal, workload, change = SYMPTOMS[fault]
    seen = {}
    for flavor in flavor_names():
        healthy = recorded.value(signal, flavor, "control", workload)
        faulty = recorded.value(signal, flavor, fault, workload)
        if change.startswith("x"):
            assert faulty > float(change[1:]) * healthy, (flavor, healthy, faulty)
        else:
            assert faulty > healthy + float(change[1:]), (flavor, healthy, faulty)
        seen[flavor] = faulty
    # the same requests underneath: the flavours agree (latency within their buckets)
    istio = seen["istio"]
    for flavor, value in seen.items():
        assert value == pytest.approx(istio, rel=0.35), (flavor, seen)
