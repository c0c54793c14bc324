"""The shop's state as a real cluster's exporters would expose it: the request-metrics flavour
the shop speaks (Istio, OpenTelemetry or Linkerd: aiops_lab.sim.flavors) plus cAdvisor,
kube-state-metrics and node_exporter (aiops_lab.sim.cluster_metrics), with their metric names and
label names, so PromQL written against the lab works on a real cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiops_lab.sim.cluster_metrics import collect_cluster, container_name
from aiops_lab.sim.exposition import Family
from aiops_lab.sim.topology import LOADGENERATOR

if TYPE_CHECKING:
    from aiops_lab.sim.shop import Shop


def collect(shop: Shop) -> list[Family]:
    return [*shop.flavor.render(shop.requests, shop.namespace), *collect_cluster(shop)]


__all__ = ["LOADGENERATOR", "collect", "container_name"]
