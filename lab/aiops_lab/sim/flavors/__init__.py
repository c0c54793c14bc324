"""The request-metrics flavours the lab's exporter speaks, under the names each exporter writes.

| flavour | families |
|---|---|
| `istio` | `istio_requests_total`, `istio_request_duration_milliseconds` (Envoy sidecars) |
| `otel` | OpenTelemetry semantic conventions (`http_server_request_duration_seconds`,
  `rpc_server_duration_milliseconds`) and the collector's servicegraph connector
  (`traces_service_graph_request_*`) |
| `linkerd` | `request_total`, `response_total`, `response_latency_ms` (linkerd2-proxy) |

cAdvisor, kube-state-metrics and node_exporter are the same in every flavour
(aiops_lab.sim.cluster_metrics). A flavour renders the shop's flavour-neutral request counts
(aiops_lab.sim.requests); its `grid_ms` is the union of its exporters' bucket boundaries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiops_lab.sim.exposition import Family
from aiops_lab.sim.requests import RequestLedger


@dataclass(frozen=True)
class Flavor:
    name: str
    description: str
    grid_ms: tuple[float, ...]
    render: Callable[[RequestLedger, str], list[Family]]  # (ledger, namespace) -> families


def _flavors() -> dict[str, Flavor]:
    from aiops_lab.sim.flavors import istio, linkerd, otel

    return {f.name: f for f in (istio.FLAVOR, otel.FLAVOR, linkerd.FLAVOR)}


def flavor_names() -> list[str]:
    return list(_flavors())


def flavor_named(name: str) -> Flavor:
    flavors = _flavors()
    try:
        return flavors[name]
    except KeyError:
        raise ValueError(
            f"unknown metrics flavour {name!r}; choose one of {', '.join(flavors)}"
        ) from None


def le(value: float) -> str:
    """A bucket boundary as exporters print it: 5, 0.5, 0.005 (no trailing zeros)."""
    return str(int(value)) if value == int(value) else repr(value)


__all__ = ["Flavor", "flavor_named", "flavor_names", "le"]
