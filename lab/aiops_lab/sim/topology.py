"""Online Boutique as the simulation sees it: services, their cost model and the call graph.

The numbers are chosen so that at the reference load (50 rps at the frontend) with the default
replicas and limits every service runs at 20-50 % CPU utilisation: enough headroom that normal
traffic and short spikes stay healthy, little enough that a surge or a CPU hog saturates the
target. The frontend is the busiest, so a traffic surge saturates it first and scaling it fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "boutique"
NODES: tuple[str, ...] = ("node-a", "node-b", "node-c")
NODE_CPU_CORES = 4.0
NODE_MEMORY_BYTES = 8 * 1024**3
LOADGENERATOR = "loadgenerator"
REFERENCE_RPS = 50.0
MIB = 1024**2


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    # Default deployment shape (the static layout used for backfill; live, the simulation reads
    # replicas and limits from the cluster snapshot and falls back to these only for a missing
    # limit).
    replicas: int
    cpu_limit_cores: float
    memory_limit_bytes: float
    image: str
    protocol: str  # istio request_protocol: http for the frontend, grpc behind it, tcp for redis
    # Cost model.
    own_ms: float  # median own processing time, excluding downstream calls, at zero load
    cpu_per_request: float  # core-seconds per request
    memory_base_bytes: float
    memory_per_rps_bytes: float


def _image(name: str) -> str:
    return f"us-central1-docker.pkg.dev/google-samples/microservices-demo/{name}:v0.10.2"


# Replicas and limits as the lab cluster deploys them (lab/aiops_lab/cluster/boutique.py, after the
# upstream manifests); the cost model is calibrated against them.
SERVICES: dict[str, ServiceSpec] = {
    s.name: s
    for s in (
        ServiceSpec(
            "frontend",
            2,
            0.2,
            128 * MIB,
            _image("frontend"),
            "http",
            8.0,
            0.0040,
            60 * MIB,
            0.4 * MIB,
        ),
        ServiceSpec(
            "productcatalogservice",
            2,
            0.2,
            128 * MIB,
            _image("productcatalogservice"),
            "grpc",
            3.0,
            0.0010,
            40 * MIB,
            0.1 * MIB,
        ),
        ServiceSpec(
            "currencyservice",
            2,
            0.2,
            128 * MIB,
            _image("currencyservice"),
            "grpc",
            2.0,
            0.0010,
            50 * MIB,
            0.1 * MIB,
        ),
        ServiceSpec(
            "cartservice",
            2,
            0.3,
            128 * MIB,
            _image("cartservice"),
            "grpc",
            4.0,
            0.0035,
            60 * MIB,
            0.3 * MIB,
        ),
        ServiceSpec(
            "redis-cart",
            1,
            0.125,
            256 * MIB,
            "redis:alpine",
            "tcp",
            1.0,
            0.0008,
            30 * MIB,
            0.2 * MIB,
        ),
        ServiceSpec(
            "recommendationservice",
            1,
            0.2,
            450 * MIB,
            _image("recommendationservice"),
            "grpc",
            5.0,
            0.0020,
            150 * MIB,
            0.2 * MIB,
        ),
        ServiceSpec(
            "adservice",
            1,
            0.3,
            300 * MIB,
            _image("adservice"),
            "grpc",
            3.0,
            0.0030,
            150 * MIB,
            0.2 * MIB,
        ),
        ServiceSpec(
            "shippingservice",
            1,
            0.2,
            128 * MIB,
            _image("shippingservice"),
            "grpc",
            3.0,
            0.0030,
            30 * MIB,
            0.1 * MIB,
        ),
        ServiceSpec(
            "checkoutservice",
            2,
            0.2,
            128 * MIB,
            _image("checkoutservice"),
            "grpc",
            10.0,
            0.0150,
            40 * MIB,
            1.0 * MIB,
        ),
        ServiceSpec(
            "paymentservice",
            1,
            0.2,
            128 * MIB,
            _image("paymentservice"),
            "grpc",
            15.0,
            0.0150,
            50 * MIB,
            1.0 * MIB,
        ),
        ServiceSpec(
            "emailservice",
            1,
            0.2,
            128 * MIB,
            _image("emailservice"),
            "grpc",
            12.0,
            0.0150,
            60 * MIB,
            1.0 * MIB,
        ),
    )
}


@dataclass(frozen=True)
class Call:
    source: str
    destination: str
    per_request: float  # calls to destination per request served by source
    # Probability that a failed call fails the caller's request (ads are optional on a page,
    # recommendations degrade gracefully, everything on the checkout path is required).
    criticality: float


CALLS: tuple[Call, ...] = (
    Call("frontend", "adservice", 0.5, 0.0),
    Call("frontend", "cartservice", 0.6, 1.0),
    Call("frontend", "checkoutservice", 0.05, 1.0),
    Call("frontend", "currencyservice", 1.5, 1.0),
    Call("frontend", "productcatalogservice", 1.2, 1.0),
    Call("frontend", "recommendationservice", 0.5, 0.3),
    Call("frontend", "shippingservice", 0.2, 1.0),
    Call("checkoutservice", "cartservice", 2.0, 1.0),
    Call("checkoutservice", "currencyservice", 2.0, 1.0),
    Call("checkoutservice", "emailservice", 1.0, 0.2),
    Call("checkoutservice", "paymentservice", 1.0, 1.0),
    Call("checkoutservice", "productcatalogservice", 2.0, 1.0),
    Call("checkoutservice", "shippingservice", 2.0, 1.0),
    Call("recommendationservice", "productcatalogservice", 1.0, 1.0),
    Call("cartservice", "redis-cart", 1.0, 1.0),
)

# Callers before callees: the order in which load flows down the graph.
TOPOLOGICAL_ORDER: tuple[str, ...] = (
    "frontend",
    "checkoutservice",
    "recommendationservice",
    "adservice",
    "cartservice",
    "currencyservice",
    "productcatalogservice",
    "shippingservice",
    "paymentservice",
    "emailservice",
    "redis-cart",
)


def callees(service: str) -> list[Call]:
    return [c for c in CALLS if c.source == service]


def callers(service: str) -> list[Call]:
    return [c for c in CALLS if c.destination == service]
