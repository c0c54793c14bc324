"""The running lab: the simulated cluster with its Kubernetes API, the shop with its exporter and
control endpoint, and a real Prometheus scraping it, with two days of history backfilled first.

`aiops lab up` starts this in a background process (`aiops lab run`) and reads where everything
listens from `<state_dir>/lab/lab.json`; `aiops lab down` stops it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from aiops.logs import get_logger
from aiops_lab.backfill import backfill
from aiops_lab.cluster.cluster import Cluster
from aiops_lab.cluster.state import ClusterConfig
from aiops_lab.kubeapi.server import start_lab_api, write_kubeconfig
from aiops_lab.prometheus_config import PrometheusProcess, write_prometheus_config
from aiops_lab.sim.service import ShopService

log = get_logger(__name__)


@dataclass(frozen=True)
class LabInfo:
    pid: int
    prometheus_url: str
    kube_api_url: str
    kubeconfig: str
    shop_url: str
    started_at: float
    backfill_s: float
    metrics: str = "istio"

    def describe(self) -> str:
        return (
            f"  Prometheus       {self.prometheus_url}\n"
            f"  Kubernetes API   {self.kube_api_url}\n"
            f"  kubeconfig       {self.kubeconfig}   (export KUBECONFIG={self.kubeconfig})\n"
            f"  shop metrics     {self.shop_url}/metrics ({self.metrics} flavour)\n"
            f"  use with aiops:  AIOPS_PROMETHEUS__URL={self.prometheus_url} "
            f"AIOPS_KUBERNETES__KUBECONFIG={self.kubeconfig}"
        )


def lab_dir(state_dir: Path) -> Path:
    return state_dir.resolve() / "lab"


def info_path(state_dir: Path) -> Path:
    return lab_dir(state_dir) / "lab.json"


def read_info(state_dir: Path) -> LabInfo | None:
    path = info_path(state_dir)
    if not path.exists():
        return None
    info = LabInfo(**json.loads(path.read_text()))
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)  # a lab that died without cleaning up
        return None
    return info


class _ShiftedClock:
    """The cluster's clock, `offset` seconds behind the wall clock."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() - self.offset


def seeded_in_the_past(age_s: float, settle_s: float = 120.0) -> Cluster:
    """The shop's cluster as if it had been running for `age_s` seconds (as long as the
    backfilled history): seeded and settled then, so its objects and events (ReplicaSets
    created, "Scaled up replica set") are that old. Seeded now, every deployment would show a
    change minutes before any fault, which a root-cause analysis rightly weighs as a suspect."""
    clock = _ShiftedClock(age_s)
    cluster = Cluster.boutique(ClusterConfig(external_readiness=True), clock=clock)
    then = clock()
    for t in range(0, int(settle_s) + 1, 5):
        cluster.tick(then + t)
    clock.offset = 0.0
    return cluster


def run_lab(
    state_dir: Path,
    *,
    rps: float = 50.0,
    scrape_interval: str = "1s",
    history_days: float = 2.0,
    prometheus_port: int = 0,
    stop: threading.Event | None = None,
    rule_files: list[str | Path] | None = None,
    metrics: str = "istio",
) -> None:
    """Run the lab in this process until SIGTERM/SIGINT (or `stop` is set). `rule_files`:
    optional Prometheus rule files (e.g. alerting rules a benchmark compares against);
    `metrics`: the request-metrics flavour the shop's exporter speaks (istio, otel, linkerd)."""
    home = lab_dir(state_dir)
    if home.exists():
        shutil.rmtree(home)  # each lab starts from a clean cluster and fresh history
    home.mkdir(parents=True)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

    cluster = seeded_in_the_past(history_days * 86400.0)
    api = start_lab_api(cluster)
    kubeconfig = write_kubeconfig(home / "kubeconfig", api.url)
    started = time.monotonic()
    # A fine last quarter of an hour: enough for the detector's warm-up at a 1 s pass.
    history = backfill(
        home / "prometheus", days=history_days, rps=rps, fine_tail=900.0, metrics=metrics
    )
    backfill_s = time.monotonic() - started
    shop = ShopService(
        cluster, rps=rps, anchor=history.end, history=history.shop, metrics=metrics
    ).start()
    config = write_prometheus_config(
        home / "prometheus.yml",
        [shop.target],
        scrape_interval=scrape_interval,
        rule_files=rule_files,
    )
    prom = PrometheusProcess(
        config, home / "prometheus", port=prometheus_port or None, log_file=home / "prometheus.log"
    )
    try:
        prom.wait_ready()
        info = LabInfo(
            pid=os.getpid(),
            prometheus_url=prom.url,
            kube_api_url=api.url,
            kubeconfig=str(kubeconfig),
            shop_url=f"http://{shop.target}",
            started_at=time.time(),
            backfill_s=round(backfill_s, 1),
            metrics=metrics,
        )
        info_path(state_dir).write_text(json.dumps(asdict(info), indent=2))
        log.info("lab up", **asdict(info))
        stop.wait()
    finally:
        info_path(state_dir).unlink(missing_ok=True)
        prom.stop()
        shop.stop()
        api.stop()
        log.info("lab down")
