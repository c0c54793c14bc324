"""Linkerd: what each pod's linkerd2-proxy writes, with the labels Linkerd's Prometheus scrape
configuration adds (`namespace`, `deployment` from the `linkerd.io/proxy-deployment` label).

* `direction="inbound"`: the callee's proxy, for what its server handled (no `authority`);
* `direction="outbound"`: the caller's proxy, for every call it made (including the ones no
  endpoint answered), with `dst_deployment`, `dst_namespace`, `dst_service` and `authority`;
* `request_total`; `response_total` with `status_code`, `classification` (`success`/`failure`;
  from `grpc_status_code` when there is one, else the HTTP status) and `grpc_status_code`;
  `response_latency_ms` (milliseconds, the proxy's buckets) with `status_code`.

Linkerd proxies redis' TCP opaquely: redis-cart has no request metrics. The load generator
has no proxy: only the frontend's inbound side counts its requests. Series are per workload,
not per pod (the lab exposes one target).
"""

from __future__ import annotations

from aiops_lab.sim.exposition import Family, Labels
from aiops_lab.sim.flavors import Flavor, le
from aiops_lab.sim.requests import Histogram, RequestLedger
from aiops_lab.sim.topology import LOADGENERATOR, SERVICES

BUCKETS_MS: tuple[float, ...] = (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500)
BUCKETS_MS += (1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000)
_LE = [le(b) for b in BUCKETS_MS]
_GRPC_STATUS = {"200": "0", "500": "2", "503": "14"}  # OK, UNKNOWN, UNAVAILABLE
_PORT = {"http": 80, "grpc": 8080}


def _response(dst: str, code: str) -> tuple[Labels, Labels]:
    """(labels of every response_* series, extra labels of response_total)."""
    if SERVICES[dst].protocol == "grpc":  # a gRPC error travels in the trailer, under HTTP 200
        grpc = _GRPC_STATUS.get(code, "2")
        failure = grpc != "0"
        return (("status_code", "200"),), (
            ("classification", "failure" if failure else "success"),
            ("grpc_status_code", grpc),
        )
    return (("status_code", code),), (
        ("classification", "failure" if code.startswith("5") else "success"),
    )


def render(ledger: RequestLedger, ns: str) -> list[Family]:
    requests = Family("request_total", "counter", "Total count of HTTP requests.")
    responses = Family("response_total", "counter", "Total count of HTTP responses.")
    latency = Family(
        "response_latency_ms",
        "histogram",
        "Elapsed times between a request's headers being "
        "received and its response stream completing",
    )
    inbound: dict[tuple[str, str], Histogram] = {}
    for (_, dst, code), h in ledger.server_view().items():
        inbound.setdefault((dst, code), ledger.empty()).add(h)
    outbound = {key: h for key, h in ledger.caller_view().items() if key[0] != LOADGENERATOR}
    rows: list[tuple[Labels, str, str, Histogram]] = []
    for (dst, code), h in sorted(inbound.items()):
        if SERVICES[dst].protocol == "tcp":
            continue
        proxy: Labels = (("deployment", dst), ("direction", "inbound"), ("namespace", ns))
        rows.append(((*proxy, ("tls", "true")), dst, code, h))
    for (src, dst, code), h in sorted(outbound.items()):
        protocol = SERVICES[dst].protocol
        if protocol == "tcp":
            continue
        proxy = (
            ("authority", f"{dst}.{ns}.svc.cluster.local:{_PORT[protocol]}"),
            ("deployment", src),
            ("direction", "outbound"),
            ("dst_deployment", dst),
            ("dst_namespace", ns),
            ("dst_service", dst),
            ("namespace", ns),
        )
        rows.append(((*proxy, ("tls", "true")), dst, code, h))
    totals: dict[Labels, float] = {}
    # gRPC answers of every outcome share status_code 200: one latency series for them all.
    durations: dict[Labels, Histogram] = {}
    for base, dst, code, h in rows:
        status, outcome = _response(dst, code)
        totals[base] = totals.get(base, 0.0) + h.total
        responses.add((*base, *status, *outcome), h.total)
        durations.setdefault((*base, *status), ledger.empty()).add(h)
    for labels, h in durations.items():
        for b, v in zip([*_LE, "+Inf"], ledger.at(h, BUCKETS_MS), strict=True):
            latency.add((*labels, ("le", b)), v, "_bucket")
        latency.add(labels, h.sum_ms, "_sum")
        latency.add(labels, h.total, "_count")
    for base, n in totals.items():
        requests.add(base, n)
    return [requests, responses, latency]


FLAVOR = Flavor(
    name="linkerd",
    description="Linkerd proxies: request_total, response_total, response_latency_ms",
    grid_ms=BUCKETS_MS,
    render=render,
)
