"""The shop's metrics flavours: each exporter's own names, labels and units, promtool-clean, and
the same requests underneath (a seed gives the same traffic in every flavour)."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict

import pytest
from aiops_lab.cli import METRICS_FLAVORS
from aiops_lab.sim.exposition import Family, render_text
from aiops_lab.sim.flavors import flavor_named, flavor_names
from aiops_lab.sim.shop import Shop

from tests.lab.fake_cluster import FakeCluster

# promtool lints the real exporters' own names; anything else it says is a real problem
KNOWN_LINT = (
    'istio_request_duration_milliseconds use base unit "seconds"',
    'rpc_server_duration_milliseconds use base unit "seconds"',
    "response_latency_ms metric names should not contain abbreviated units",
    "node_memory_MemAvailable_bytes metric names should be written in 'snake_case'",
    "node_memory_MemTotal_bytes metric names should be written in 'snake_case'",
)
REQUEST_FAMILIES = {
    "istio": {"istio_requests_total", "istio_request_duration_milliseconds"},
    "otel": {
        "http_server_request_duration_seconds",
        "rpc_server_duration_milliseconds",
        "traces_service_graph_request_total",
        "traces_service_graph_request_failed_total",
        "traces_service_graph_request_server_seconds",
        "traces_service_graph_request_client_seconds",
    },
    "linkerd": {"request_total", "response_total", "response_latency_ms"},
}


def _shop(flavor: str, seconds: int = 5, seed: int = 2) -> Shop:
    cluster = FakeCluster()
    shop = Shop(cluster, seed=seed, metrics=flavor)
    for _ in range(seconds):
        cluster.advance(1)
        shop.step(cluster.at)
    return shop


def _samples(families: list[Family], name: str) -> list[tuple[dict[str, str], float]]:
    return [(dict(lb), v) for f in families for n, lb, v in f.samples if n == name]


def test_the_cli_offers_every_flavour() -> None:
    assert list(METRICS_FLAVORS) == flavor_names()
    with pytest.raises(ValueError, match="choose one of istio, otel, linkerd"):
        flavor_named("zipkin")


@pytest.mark.parametrize("flavor", flavor_names())
@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_each_flavour_passes_promtool_with_its_exporters_names(flavor: str) -> None:
    families = _shop(flavor).families()
    proc = subprocess.run(
        ["promtool", "check", "metrics"],
        input=render_text(families),
        text=True,
        capture_output=True,
        check=False,
    )
    problems = [
        ln
        for ln in (proc.stdout + proc.stderr).splitlines()
        if ln.strip() and not ln.startswith(KNOWN_LINT)
    ]
    assert problems == []
    names = {f.name for f in families}
    assert names >= REQUEST_FAMILIES[flavor] | {"container_cpu_usage_seconds_total"}
    for other, fams in REQUEST_FAMILIES.items():
        if other != flavor:
            assert not names & fams, f"{flavor} exports {other}'s {names & fams}"


def test_otel_units_labels_and_servicegraph_edges() -> None:
    fams = _shop("otel").families()
    http = _samples(fams, "http_server_request_duration_seconds_bucket")
    assert {lb["le"] for lb, _ in http} >= {"0.005", "0.25", "10", "+Inf"}  # seconds
    assert {lb["service_name"] for lb, _ in http} == {"frontend"}
    rpc = _samples(fams, "rpc_server_duration_milliseconds_count")
    cart = [lb for lb, _ in rpc if lb["service_name"] == "cartservice"]
    assert cart and all(
        lb["rpc_system"] == "grpc"
        and lb["rpc_service"] == "hipstershop.CartService"
        and lb["rpc_grpc_status_code"] == "0"
        and lb["k8s_namespace_name"] == "boutique"
        for lb in cart
    )
    assert not any(lb["service_name"] == "redis-cart" for lb, _ in rpc)  # not instrumented
    rpc_sum = {
        lb["service_name"]: v for lb, v in _samples(fams, "rpc_server_duration_milliseconds_sum")
    }
    rpc_n = {lb["service_name"]: v for lb, v in rpc}
    assert 1 < rpc_sum["cartservice"] / rpc_n["cartservice"] < 100  # milliseconds
    edges = {
        (lb["client"], lb["server"])
        for lb, _ in _samples(fams, "traces_service_graph_request_total")
    }
    assert ("frontend", "cartservice") in edges and ("cartservice", "redis-cart") in edges
    assert not any(c == "loadgenerator" for c, _ in edges)


def test_linkerd_directions_and_grpc_classification() -> None:
    fams = _shop("linkerd").families()
    totals = _samples(fams, "response_total")
    inbound = [lb for lb, _ in totals if lb["direction"] == "inbound"]
    outbound = [lb for lb, _ in totals if lb["direction"] == "outbound"]
    assert {lb["deployment"] for lb in inbound} >= {"frontend", "cartservice"}
    assert all("authority" not in lb and "dst_deployment" not in lb for lb in inbound)
    edge = next(
        lb
        for lb in outbound
        if lb["deployment"] == "frontend" and lb["dst_deployment"] == "cartservice"
    )
    assert edge["dst_namespace"] == "boutique" and edge["authority"].startswith("cartservice.")
    cart = next(lb for lb in inbound if lb["deployment"] == "cartservice")
    assert (cart["status_code"], cart["grpc_status_code"], cart["classification"]) == (
        "200",
        "0",
        "success",
    )
    assert not any(
        lb.get("dst_deployment") == "redis-cart" or lb["deployment"] == "redis-cart"
        for lb in outbound + inbound
    )


def test_every_flavour_counts_the_same_requests() -> None:
    """Istio's destination side, OTel's server metrics and Linkerd's inbound side count what each
    server handled: the same numbers for a seed."""
    served: dict[str, dict[str, float]] = {}
    istio = _shop("istio", 20).families()
    by: dict[str, float] = defaultdict(float)
    for lb, v in _samples(istio, "istio_requests_total"):
        if lb["reporter"] == "destination" and lb["destination_workload"] != "redis-cart":
            by[lb["destination_workload"]] += v
    served["istio"] = dict(by)
    otel = _shop("otel", 20).families()
    by = defaultdict(float)
    for name in (
        "http_server_request_duration_seconds_count",
        "rpc_server_duration_milliseconds_count",
    ):
        for lb, v in _samples(otel, name):
            by[lb["service_name"]] += v
    served["otel"] = dict(by)
    linkerd = _shop("linkerd", 20).families()
    by = defaultdict(float)
    for lb, v in _samples(linkerd, "request_total"):
        if lb["direction"] == "inbound":
            by[lb["deployment"]] += v
    served["linkerd"] = dict(by)
    assert served["istio"] == served["otel"] == served["linkerd"]
    assert served["istio"]["frontend"] > 500
