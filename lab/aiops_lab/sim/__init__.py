"""The lab's simulated Online Boutique: traffic, faults, metrics under real exporter names.

Wiring (what `aiops lab up/inject/status/down` needs):

    from aiops_lab.backfill import backfill
    from aiops_lab.prometheus_config import PrometheusProcess, write_prometheus_config
    from aiops_lab.scenario import load_scenario

    history = backfill(data_dir, days=2, step=60)            # before Prometheus starts
    service = ShopService(cluster, rps=50, anchor=history.end, history=history.shop,
                          port=9464).start()                 # ticks 1/s, serves /metrics
    write_prometheus_config(cfg_path, [service.target], scrape_interval="1s")
    prom = PrometheusProcess(cfg_path, data_dir, port=9090); prom.wait_ready()
    service.play(load_scenario(path))                        # or POST /lab/scenario
    service.status()                                         # or GET /lab/status

(ShopService and ScenarioTimeline are not re-exported here: they import aiops_lab.scenario,
which imports this package.)
"""

from aiops_lab.sim.exporter import MetricsServer, ShopRunner, serve_metrics
from aiops_lab.sim.faults import Fault, FaultKind, NoiseKind, Severity
from aiops_lab.sim.shop import ServiceStatus, Shop
from aiops_lab.sim.traffic import Pattern, Traffic

__all__ = [
    "Fault",
    "FaultKind",
    "MetricsServer",
    "NoiseKind",
    "Pattern",
    "ServiceStatus",
    "Severity",
    "Shop",
    "ShopRunner",
    "Traffic",
    "serve_metrics",
]
