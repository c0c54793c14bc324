"""The exporter: valid exposition under the real exporters' names, served over HTTP."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from aiops_lab.prometheus_config import write_prometheus_config
from aiops_lab.sim.exporter import serve_metrics
from aiops_lab.sim.exposition import render_text
from aiops_lab.sim.shop import Shop

from tests.lab.fake_cluster import FakeCluster

EXPECTED = {
    "istio_requests_total",
    "istio_request_duration_milliseconds_bucket",
    "istio_request_duration_milliseconds_sum",
    "istio_request_duration_milliseconds_count",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "container_spec_memory_limit_bytes",
    "kube_deployment_spec_replicas",
    "kube_deployment_status_replicas_available",
    "kube_pod_info",
    "kube_pod_status_ready",
    "kube_pod_container_status_restarts_total",
    "kube_node_spec_unschedulable",
    "node_cpu_seconds_total",
    "node_memory_MemAvailable_bytes",
}
# promtool lints the real exporters' own names; anything else it says is a real problem
KNOWN_LINT = (
    'istio_request_duration_milliseconds use base unit "seconds"',
    "node_memory_MemAvailable_bytes metric names should be written in 'snake_case'",
    "node_memory_MemTotal_bytes metric names should be written in 'snake_case'",
)


def _shop() -> tuple[Shop, FakeCluster]:
    cluster = FakeCluster()
    shop = Shop(cluster, seed=2)
    for _ in range(5):
        cluster.advance(1)
        shop.step(cluster.at)
    return shop, cluster


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_exposition_passes_promtool_and_has_the_exporters_names() -> None:
    shop, _ = _shop()
    text = render_text(shop.families())
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=text, text=True, capture_output=True, check=False
    )
    problems = [
        ln
        for ln in (proc.stdout + proc.stderr).splitlines()
        if ln.strip() and not ln.startswith(KNOWN_LINT)
    ]
    assert problems == []
    names = {ln.split("{")[0].split(" ")[0] for ln in text.splitlines() if ln[:1] not in "#"}
    assert names >= EXPECTED
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("istio_requests_total{")
        and 'destination_workload="cartservice"' in ln
        and "frontend" in ln
    )
    for label in (
        'reporter="destination"',
        'source_workload="frontend"',
        'destination_service_namespace="boutique"',
        'response_code="200"',
    ):
        assert label in line


def test_metrics_endpoint_serves_text_format_on_loopback() -> None:
    shop, cluster = _shop()
    server = serve_metrics(shop, port=0)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        r = httpx.get(server.url, timeout=5)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        before = r.text
        assert "kube_pod_info{" in before
        cluster.advance(1)
        shop.step(cluster.at)
        assert httpx.get(server.url, timeout=5).text != before
        assert httpx.get(server.url.replace("/metrics", "/nope"), timeout=5).status_code == 404
    finally:
        server.stop()


def test_prometheus_config_pins_instance_and_honours_exported_labels(tmp_path: Path) -> None:

    path = write_prometheus_config(
        tmp_path / "prometheus.yml", ["127.0.0.1:9999"], scrape_interval="2s"
    )
    cfg = yaml.safe_load(path.read_text())
    assert cfg["global"]["scrape_interval"] == "2s"
    job = cfg["scrape_configs"][0]
    assert job["honor_labels"] is True
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9999"]}]
    assert job["relabel_configs"][0]["replacement"] == "aiops-lab"
    if shutil.which("promtool"):
        check = subprocess.run(
            ["promtool", "check", "config", str(path)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
