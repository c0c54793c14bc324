"""Benchmark: profile discovery over 10,000 series of the profiles' metric families (plus as
many series of unrelated families) in a real Prometheus.

The bench writes three samples in the last five minutes for each series, as the exporters name
them: Istio (requests and duration buckets), Linkerd, OpenTelemetry (semantic conventions,
spanmetrics, servicegraph), ingress-nginx, cAdvisor, kube-state-metrics and node_exporter, and
series of families no profile reads (an API server's). It backfills them with promtool, starts
Prometheus on the blocks and times `ProfileDiscovery.refresh()`: the label-values call on
`__name__` bounded to the profiles' families and the last 10 minutes, then one label-names call
per family whose signals need particular labels.

Run: uv run python bench/bench_discovery.py [--series 10000] [--runs 30]
Prints figures only; it is not a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from aiops_lab.prometheus_config import PrometheusProcess

from aiops.config import ProfileSettings, PrometheusSettings
from aiops.integrations.discovery import ProfileDiscovery, wanted_families
from aiops.integrations.prometheus import Prometheus

# (series name, labels template); {i} numbers the workload, {j} the histogram bucket
FAMILIES: list[tuple[str, str]] = [
    (
        "istio_requests_total",
        'reporter="destination",destination_workload="w{i}",destination_workload_namespace="ns{n}",response_code="200"',
    ),
    (
        "istio_request_duration_milliseconds_bucket",
        'reporter="destination",destination_workload="w{i}",destination_workload_namespace="ns{n}",le="{j}"',
    ),
    (
        "response_total",
        'direction="inbound",deployment="w{i}",namespace="ns{n}",classification="success"',
    ),
    (
        "response_latency_ms_bucket",
        'direction="inbound",deployment="w{i}",namespace="ns{n}",le="{j}"',
    ),
    (
        "rpc_server_duration_milliseconds_bucket",
        'service_name="w{i}",k8s_namespace_name="ns{n}",rpc_grpc_status_code="0",le="{j}"',
    ),
    (
        "rpc_server_duration_milliseconds_count",
        'service_name="w{i}",k8s_namespace_name="ns{n}",rpc_grpc_status_code="0"',
    ),
    (
        "traces_span_metrics_calls_total",
        'service_name="w{i}",k8s_namespace_name="ns{n}",span_kind="SPAN_KIND_SERVER"',
    ),
    (
        "traces_service_graph_request_total",
        'client="w{i}",server="w{k}",server_k8s_namespace_name="ns{n}"',
    ),
    ("nginx_ingress_controller_requests", 'service="w{i}",namespace="ns{n}",status="200"'),
    (
        "container_cpu_usage_seconds_total",
        'namespace="ns{n}",pod="w{i}-5d9f8b6c7d-x2x7k",container="server"',
    ),
    ("kube_pod_status_ready", 'namespace="ns{n}",pod="w{i}-5d9f8b6c7d-x2x7k",condition="true"'),
    ("kube_deployment_status_replicas_available", 'namespace="ns{n}",deployment="w{i}"'),
    ("node_cpu_seconds_total", 'instance="node{i}:9100",cpu="0",mode="idle"'),
]
UNRELATED = ("apiserver_request_duration_seconds_bucket", 'verb="GET",resource="r{i}",le="{j}"')
BUCKETS = 10


def write(path: Path, series: int, now: float) -> tuple[int, int]:
    """(series of the profiles' families, series in all)."""
    per_family = series // len(FAMILIES)
    written = related = 0
    with path.open("w") as out:
        for name, template in [*FAMILIES, UNRELATED]:
            buckets = BUCKETS if "le=" in template else 1
            count = series if (name, template) == UNRELATED else per_family
            for n in range(count // buckets):
                for j in range(buckets):
                    labels = template.format(i=n, k=n + 1, n=n % 20, j=j)
                    for age in (300, 200, 100):
                        out.write(f"{name}{{{labels}}} {n} {now - age:.3f}\n")
                    written += 1
            if (name, template) != UNRELATED:
                related = written
        out.write("# EOF\n")
    return related, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--series", type=int, default=10_000, help="series of the profiles' families"
    )
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiops-bench-discovery-") as tmp:
        folder = Path(tmp)
        now = time.time()
        related, total = write(folder / "series.om", args.series, now)
        subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(folder / "series.om"),
                str(folder / "data"),
            ],
            check=True,
            capture_output=True,
        )
        (folder / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
        with PrometheusProcess(folder / "prometheus.yml", folder / "data") as prom:
            prom.wait_ready()
            prometheus = Prometheus(PrometheusSettings(url=prom.url))
            discovery = ProfileDiscovery(ProfileSettings(), prometheus)
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                live = discovery.refresh()
                times.append(time.perf_counter() - started)
            times.sort()
            labelled = sum(1 for labels in wanted_families(discovery.profiles).values() if labels)
    wanted = len(wanted_families(discovery.profiles))
    print(
        f"series in Prometheus: {total} ({related} of the profiles' families); "
        f"families wanted: {wanted} ({labelled} with labels asked)"
    )
    print(f"profiles found: {', '.join(live.profiles_found)}; signals live: {len(live.signals)}")
    print(
        f"discovery over {args.runs} runs: median {statistics.median(times) * 1000:.0f} ms, "
        f"p95 {times[int(0.95 * (len(times) - 1))] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
