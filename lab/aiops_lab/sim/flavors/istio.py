"""Istio's standard metrics as the Envoy sidecars write them.

A request the destination's sidecar handled is reported with `reporter="destination"`; one that
only the caller's sidecar saw (no healthy upstream, `response_flags="UH"`) with
`reporter="source"`. Durations in milliseconds, Istio's default buckets up to 10 s (its larger
ones, 30 s .. 1 h, only ever equal +Inf here and would double backfill time).
"""

from __future__ import annotations

from aiops_lab.sim.exposition import Family, Labels
from aiops_lab.sim.flavors import Flavor, le
from aiops_lab.sim.requests import RequestLedger
from aiops_lab.sim.topology import SERVICES

BUCKETS_MS: tuple[float, ...] = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_LE = [le(b) for b in BUCKETS_MS]
_GRPC_STATUS = {"200": "0", "500": "2", "503": "14"}
_REPORTER = {"server": "destination", "client": "source"}


def _labels(ns: str, reporter: str, src: str, dst: str, code: str) -> Labels:
    protocol = SERVICES[dst].protocol if dst in SERVICES else "http"
    grpc = _GRPC_STATUS.get(code, "2") if protocol == "grpc" else ""
    flags = "UH" if reporter == "source" and code == "503" else "-"
    return (
        ("connection_security_policy", "mutual_tls" if reporter == "destination" else "unknown"),
        ("destination_app", dst),
        ("destination_service", f"{dst}.{ns}.svc.cluster.local"),
        ("destination_service_name", dst),
        ("destination_service_namespace", ns),
        ("destination_workload", dst),
        ("destination_workload_namespace", ns),
        ("grpc_response_status", grpc),
        ("reporter", reporter),
        ("request_protocol", protocol),
        ("response_code", code),
        ("response_flags", flags),
        ("source_app", src),
        ("source_workload", src),
        ("source_workload_namespace", ns),
    )


_cache: dict[tuple[str, ...], tuple[Labels, list[Labels]]] = {}


def _label_sets(
    ns: str, reporter: str, src: str, dst: str, code: str
) -> tuple[Labels, list[Labels]]:
    """The series' labels and its buckets' (with `le`), built once per series."""
    key = (ns, reporter, src, dst, code)
    hit = _cache.get(key)
    if hit is None:
        base = _labels(ns, reporter, src, dst, code)
        hit = (base, [(*base, ("le", b)) for b in [*_LE, "+Inf"]])
        _cache[key] = hit
    return hit


def render(ledger: RequestLedger, ns: str) -> list[Family]:
    req = Family("istio_requests_total", "counter", "Total requests.")
    dur = Family("istio_request_duration_milliseconds", "histogram", "Request duration.")
    bucket_name = dur.name + "_bucket"
    rows = sorted(
        ((_REPORTER[side], src, dst, code), h) for (side, src, dst, code), h in ledger.items()
    )
    for key, h in rows:
        base, per_le = _label_sets(ns, *key)
        req.add(base, h.total)
        dur.samples.extend(
            (bucket_name, lb, v) for lb, v in zip(per_le, ledger.at(h, BUCKETS_MS), strict=True)
        )
        dur.add(base, h.sum_ms, "_sum")
        dur.add(base, h.total, "_count")
    return [req, dur]


FLAVOR = Flavor(
    name="istio",
    description="Istio sidecars: istio_requests_total, istio_request_duration_milliseconds",
    grid_ms=BUCKETS_MS,
    render=render,
)
