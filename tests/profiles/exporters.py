"""Series as each profile's exporter writes them, for a few workloads whose state the tests
choose, rendered as OpenMetrics with timestamps for promtool to backfill into a real Prometheus.

A step says, per (caller, workload), how many requests per second the workload's servers answered
(`ok`, `failed` with 5xx) and how many only the caller saw (`refused`: no server answered), and
whether the workload's pods serve. A series that no step writes any more goes silent (stale); one
no step ever wrote never existed (a 5xx series of a workload that never failed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Latencies fall in the buckets at or above them; every exporter's boundaries include these.
LATENCY_MS = 50.0


@dataclass(frozen=True)
class Calls:
    ok: float = 0.0
    failed: float = 0.0
    refused: float = 0.0
    caller: str = "frontend"


@dataclass
class Writer:
    """Cumulative counters per series, written at each step's timestamp."""

    lines: list[str] = field(default_factory=list)
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def counter(self, t: float, name: str, labels: dict[str, str], increase: float) -> None:
        key = (name, tuple(sorted(labels.items())))
        self.totals[key] = self.totals.get(key, 0.0) + increase
        self.gauge(t, name, labels, self.totals[key])

    def gauge(self, t: float, name: str, labels: dict[str, str], value: float) -> None:
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        self.lines.append(f"{name}{{{text}}} {value:.6g} {t:.3f}")

    def histogram(
        self,
        t: float,
        name: str,
        labels: dict[str, str],
        n: float,
        bounds: list[float],
        scale: float,
    ) -> None:
        """`n` requests of LATENCY_MS each; `bounds` in the exporter's unit (`scale` per ms)."""
        value = LATENCY_MS * scale
        for b in [*bounds, float("inf")]:
            le = "+Inf" if b == float("inf") else f"{b:g}"
            self.counter(t, f"{name}_bucket", {**labels, "le": le}, n if value <= b else 0.0)
        self.counter(t, f"{name}_sum", labels, n * value)
        self.counter(t, f"{name}_count", labels, n)

    def text(self) -> str:
        # written step by step: each series' samples ascend in time, as promtool needs
        return "\n".join(self.lines) + "\n# EOF\n"


Exporter = Callable[[Writer, float, float, str, str, Calls], None]
MS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
SECONDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]


def istio(w: Writer, t: float, dt: float, ns: str, workload: str, c: Calls) -> None:
    base = {
        "source_workload": c.caller,
        "source_workload_namespace": ns,
        "destination_workload": workload,
        "destination_workload_namespace": ns,
    }
    for reporter in ("destination", "source"):
        for code, rps in (("200", c.ok), ("503", c.failed)):
            if rps:
                labels = {**base, "reporter": reporter, "response_code": code}
                w.counter(t, "istio_requests_total", labels, rps * dt)
                w.histogram(t, "istio_request_duration_milliseconds", labels, rps * dt, MS, 1.0)
    if c.refused:  # only the caller's sidecar saw these
        labels = {**base, "reporter": "source", "response_code": "503", "response_flags": "UH"}
        w.counter(t, "istio_requests_total", labels, c.refused * dt)


def linkerd(w: Writer, t: float, dt: float, ns: str, workload: str, c: Calls) -> None:
    inbound = {"direction": "inbound", "deployment": workload, "namespace": ns, "tls": "true"}
    outbound = {
        "direction": "outbound",
        "deployment": c.caller,
        "namespace": ns,
        "dst_deployment": workload,
        "dst_namespace": ns,
        "tls": "true",
    }
    for side, refused in ((inbound, 0.0), (outbound, c.refused)):
        for code, rps, cls in (
            ("200", c.ok, "success"),
            ("500", c.failed, "failure"),
            ("503", refused, "failure"),
        ):
            if rps:
                labels = {**side, "status_code": code, "classification": cls}
                w.counter(t, "response_total", labels, rps * dt)
        if c.ok + c.failed:
            labels = {**side, "status_code": "200"}
            w.histogram(t, "response_latency_ms", labels, (c.ok + c.failed) * dt, MS, 1.0)


def otel_semconv(w: Writer, t: float, dt: float, ns: str, workload: str, c: Calls) -> None:
    """gRPC servers; `frontend-*` workloads serve HTTP with the stable convention."""
    resource = {"service_name": workload, "k8s_namespace_name": ns}
    for code, rps in (("0", c.ok), ("13", c.failed)):
        if not rps:
            continue
        if workload.startswith("frontend"):
            http = "200" if code == "0" else "500"
            labels = {**resource, "http_request_method": "GET", "http_response_status_code": http}
            w.histogram(t, "http_server_request_duration_seconds", labels, rps * dt, SECONDS, 0.001)
        else:
            labels = {**resource, "rpc_system": "grpc", "rpc_grpc_status_code": code}
            w.histogram(t, "rpc_server_duration_milliseconds", labels, rps * dt, MS, 1.0)


def otel_collector(w: Writer, t: float, dt: float, ns: str, workload: str, c: Calls) -> None:
    """spanmetrics (the server's spans) and servicegraph (the calls, as their client saw them)."""
    server = {"service_name": workload, "k8s_namespace_name": ns, "span_kind": "SPAN_KIND_SERVER"}
    for status, rps in (("STATUS_CODE_UNSET", c.ok), ("STATUS_CODE_ERROR", c.failed)):
        if rps:
            labels = {**server, "status_code": status}
            w.counter(t, "traces_span_metrics_calls_total", labels, rps * dt)
            w.histogram(t, "traces_span_metrics_duration_milliseconds", labels, rps * dt, MS, 1.0)
    edge = {
        "client": c.caller,
        "server": workload,
        "client_k8s_namespace_name": ns,
        "server_k8s_namespace_name": ns,
    }
    calls = c.ok + c.failed + c.refused
    if calls:
        w.counter(t, "traces_service_graph_request_total", edge, calls * dt)
        w.histogram(
            t, "traces_service_graph_request_client_seconds", edge, calls * dt, SECONDS, 0.001
        )
        if c.failed + c.refused:
            failed = (c.failed + c.refused) * dt
            w.counter(t, "traces_service_graph_request_failed_total", edge, failed)


def ingress_nginx(w: Writer, t: float, dt: float, ns: str, workload: str, c: Calls) -> None:
    """Requests from outside through an Ingress to the workload's Service."""
    base = {"namespace": ns, "ingress": workload, "service": workload}
    for code, rps in (("200", c.ok), ("502", c.failed + c.refused)):
        if rps:
            labels = {**base, "status": code, "method": "GET"}
            w.counter(t, "nginx_ingress_controller_requests", labels, rps * dt)
            w.histogram(
                t,
                "nginx_ingress_controller_request_duration_seconds",
                labels,
                rps * dt,
                SECONDS,
                0.001,
            )


REQUEST_EXPORTERS: dict[str, Exporter] = {
    "istio": istio,
    "linkerd": linkerd,
    "otel-semconv": otel_semconv,
    "otel-spanmetrics": otel_collector,
    "ingress-nginx": ingress_nginx,
}


def kube_state(
    w: Writer, t: float, dt: float, ns: str, workload: str, available: int, restarts: float
) -> None:
    """kube-state-metrics and cAdvisor for a two-replica Deployment with one pod written."""
    dep = {"namespace": ns, "deployment": workload}
    w.gauge(t, "kube_deployment_spec_replicas", dep, 2)
    w.gauge(t, "kube_deployment_status_replicas_available", dep, available)
    pod = {"namespace": ns, "pod": f"{workload}-5d9f8b6c7d-x2x7k", "container": "server"}
    w.counter(t, "kube_pod_container_status_restarts_total", pod, restarts)
    w.counter(t, "container_cpu_usage_seconds_total", pod, 0.1 * dt)
    w.gauge(t, "container_memory_working_set_bytes", pod, 64e6)
    w.gauge(t, "container_spec_memory_limit_bytes", pod, 128e6)
