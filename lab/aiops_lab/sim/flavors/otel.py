"""OpenTelemetry: the semantic conventions' server metrics from instrumented services, and the
collector's servicegraph connector for the calls between them.

* HTTP servers (the frontend): `http_server_request_duration_seconds` (seconds; buckets as the
  convention advises), `http_request_method`, `http_route`, `http_response_status_code`,
  `error_type` on 5xx;
* gRPC servers: `rpc_server_duration_milliseconds` (milliseconds, the SDK's default buckets),
  `rpc_system`, `rpc_service`, `rpc_method`, `rpc_grpc_status_code`;
* resource attributes promoted to labels as the collector's Prometheus exporter does with
  `resource_to_telemetry_conversion`: `service_name`, `k8s_namespace_name`;
* servicegraph: `traces_service_graph_request_total`, `..._failed_total`,
  `..._request_server_seconds` and `..._request_client_seconds` with `client` and `server`
  (service names), `connection_type` (`database` for redis), and `client_k8s_namespace_name`,
  `server_k8s_namespace_name` (the connector configured with `dimensions: [k8s.namespace.name]`);
  the connector's default buckets.
  A call whose server never answered is counted on its edge, as the connector does once the
  client span's peer names the server (virtual node).

redis-cart is not instrumented (no server metrics); the load generator is outside the traces.
"""

from __future__ import annotations

from aiops_lab.sim.exposition import Family, Labels
from aiops_lab.sim.flavors import Flavor, le
from aiops_lab.sim.requests import Histogram, RequestLedger
from aiops_lab.sim.topology import LOADGENERATOR, SERVICES

HTTP_BUCKETS_MS: tuple[float, ...] = (5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000)
HTTP_BUCKETS_MS += (7500, 10000)
RPC_BUCKETS_MS: tuple[float, ...] = (0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000)
RPC_BUCKETS_MS += (7500, 10000)
GRAPH_BUCKETS_MS: tuple[float, ...] = (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000)
GRAPH_BUCKETS_MS += (5000, 10000, 15000)
GRID_MS = tuple(sorted({*HTTP_BUCKETS_MS, *RPC_BUCKETS_MS, *GRAPH_BUCKETS_MS}))

_GRPC_STATUS = {"200": "0", "500": "2", "503": "14"}  # OK, UNKNOWN, UNAVAILABLE
_RPC = {
    "adservice": ("hipstershop.AdService", "GetAds"),
    "cartservice": ("hipstershop.CartService", "GetCart"),
    "checkoutservice": ("hipstershop.CheckoutService", "PlaceOrder"),
    "currencyservice": ("hipstershop.CurrencyService", "Convert"),
    "emailservice": ("hipstershop.EmailService", "SendOrderConfirmation"),
    "paymentservice": ("hipstershop.PaymentService", "Charge"),
    "productcatalogservice": ("hipstershop.ProductCatalogService", "GetProduct"),
    "recommendationservice": ("hipstershop.RecommendationService", "ListRecommendations"),
    "shippingservice": ("hipstershop.ShippingService", "GetQuote"),
}


def _seconds(boundaries_ms: tuple[float, ...]) -> list[str]:
    return [le(round(b / 1000, 6)) for b in boundaries_ms]


def _histogram(
    fam: Family,
    ledger: RequestLedger,
    labels: Labels,
    h: Histogram,
    boundaries_ms: tuple[float, ...],
    *,
    seconds: bool,
) -> None:
    names = _seconds(boundaries_ms) if seconds else [le(b) for b in boundaries_ms]
    for b, v in zip([*names, "+Inf"], ledger.at(h, boundaries_ms), strict=True):
        fam.add((*labels, ("le", b)), v, "_bucket")
    fam.add(labels, h.sum_ms / 1000 if seconds else h.sum_ms, "_sum")
    fam.add(labels, h.total, "_count")


def _by(
    view: dict[tuple[str, str, str], Histogram], ledger: RequestLedger, key: str
) -> dict[tuple[str, str], Histogram]:
    """A (caller, callee, code) view summed to (callee, code) for key "server", else to
    (caller, callee)."""
    out: dict[tuple[str, str], Histogram] = {}
    for (src, dst, code), h in view.items():
        k = (dst, code) if key == "server" else (src, dst)
        if k not in out:
            out[k] = ledger.empty()
        out[k].add(h)
    return out


def _server_metrics(ledger: RequestLedger, ns: str) -> list[Family]:
    http = Family(
        "http_server_request_duration_seconds", "histogram", "Duration of HTTP server requests."
    )
    rpc = Family(
        "rpc_server_duration_milliseconds",
        "histogram",
        "Measures the duration of inbound RPC.",
    )
    for (dst, code), h in sorted(_by(ledger.server_view(), ledger, "server").items()):
        protocol = SERVICES[dst].protocol if dst in SERVICES else "http"
        resource: Labels = (("k8s_namespace_name", ns), ("service_name", dst))
        if protocol == "http":
            # error.type is conditionally required: set on a server error, to its status
            failed: Labels = (("error_type", code),) if code.startswith("5") else ()
            labels: Labels = (
                *failed,
                ("http_request_method", "GET"),
                ("http_response_status_code", code),
                ("http_route", "/"),
                *resource,
                ("url_scheme", "http"),
            )
            _histogram(http, ledger, labels, h, HTTP_BUCKETS_MS, seconds=True)
        elif protocol == "grpc":
            service, method = _RPC[dst]
            labels = (
                *resource,
                ("rpc_grpc_status_code", _GRPC_STATUS.get(code, "2")),
                ("rpc_method", method),
                ("rpc_service", service),
                ("rpc_system", "grpc"),
            )
            _histogram(rpc, ledger, labels, h, RPC_BUCKETS_MS, seconds=False)
    return [http, rpc]


def _service_graph(ledger: RequestLedger, ns: str) -> list[Family]:
    total = Family(
        "traces_service_graph_request_total", "counter", "Total count of requests between two nodes"
    )
    failed = Family(
        "traces_service_graph_request_failed_total",
        "counter",
        "Total count of failed requests between two nodes",
    )
    server_s = Family(
        "traces_service_graph_request_server_seconds",
        "histogram",
        "Time for a request between two nodes as seen from the server",
    )
    client_s = Family(
        "traces_service_graph_request_client_seconds",
        "histogram",
        "Time for a request between two nodes as seen from the client",
    )
    calls = ledger.caller_view()
    edges = _by(calls, ledger, "edge")
    # The server span's time is what the callee spent; the client span's adds the wire.
    served = _by(ledger.server_view(), ledger, "edge")
    for (src, dst), h in sorted(edges.items()):
        if src == LOADGENERATOR:
            continue  # the load generator sends no spans
        database = SERVICES[dst].protocol == "tcp" if dst in SERVICES else False
        labels: Labels = (
            ("client", src),
            ("client_k8s_namespace_name", ns),
            *((("connection_type", "database"),) if database else ()),
            ("server", dst),
            ("server_k8s_namespace_name", ns),
        )
        total.add(labels, h.total)
        failed.add(
            labels,
            sum(v.total for (s, d, c), v in calls.items() if (s, d, c[0]) == (src, dst, "5")),
        )
        answered = served.get((src, dst), ledger.empty())
        _histogram(server_s, ledger, labels, answered, GRAPH_BUCKETS_MS, seconds=True)
        _histogram(client_s, ledger, labels, h, GRAPH_BUCKETS_MS, seconds=True)
    return [total, failed, server_s, client_s]


def render(ledger: RequestLedger, ns: str) -> list[Family]:
    return [*_server_metrics(ledger, ns), *_service_graph(ledger, ns)]


FLAVOR = Flavor(
    name="otel",
    description="OpenTelemetry: http_server_request_duration_seconds, "
    "rpc_server_duration_milliseconds, traces_service_graph_*",
    grid_ms=GRID_MS,
    render=render,
)
