"""A small shop's metrics history, as the real exporters name them, backfilled into a real
Prometheus with promtool, plus an in-test ClusterReader holding the matching Kubernetes objects.

Each namespace carries one fault starting at `fault_at`; the rest of the shop stays healthy.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from aiops.agent import (
    ContainerState,
    DeploymentInfo,
    EventInfo,
    NodeCondition,
    NodeInfo,
    PodInfo,
    ReplicaSetInfo,
)
from tests.servers import free_port, wait_until

STEP = 15.0
HISTORY_S = 40 * 60
SERVICES = ["frontend", "cart", "checkout", "payment", "shipping", "redis"]
EDGES = [
    ("loadgenerator", "frontend"),
    ("frontend", "cart"),
    ("frontend", "checkout"),
    ("checkout", "payment"),
    ("checkout", "shipping"),
    ("cart", "redis"),
]
NODE_OF = {
    "frontend": 1,
    "cart": 1,
    "redis": 1,
    "checkout": 2,
    "payment": 2,
    "shipping": 2,
}
RPS = {
    "frontend": 40.0,
    "cart": 25.0,
    "checkout": 10.0,
    "payment": 10.0,
    "shipping": 10.0,
    "redis": 60.0,
}
LATENCY_MS = {
    "frontend": 40.0,
    "cart": 15.0,
    "checkout": 30.0,
    "payment": 20.0,
    "shipping": 25.0,
    "redis": 2.0,
}
CPU = {
    "frontend": 0.2,
    "cart": 0.15,
    "checkout": 0.1,
    "payment": 0.1,
    "shipping": 0.08,
    "redis": 0.05,
}
MEMORY = {s: 200e6 + 20e6 * i for i, s in enumerate(SERVICES)}
BUCKETS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
NETWORK_MS = 2.0  # what a call spends on the wire and in the proxies, both ways


def pod_name(service: str) -> str:
    return f"{service}-7d9f8b6c5d-{(service * 5)[:5]}"


def node_name(ns: str, i: int) -> str:
    return f"{ns}-node-{i}"


# value(service, t_rel_to_fault) multipliers per fault; t < 0 is before the fault.
Effect = Callable[[str, float], float]


@dataclass
class Fault:
    namespace: str
    latency: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)  # absolute error ratio after
    memory: dict[str, float] = field(default_factory=dict)
    node_busy: dict[int, float] = field(default_factory=dict)  # node index -> busy after
    restarts: dict[str, float] = field(default_factory=dict)  # restarts per minute after
    # The callee's network: ms its callers wait more (its own proxy sees nothing), and the share
    # of calls its callers see fail (resets) while it served them all.
    network_ms: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, float] = field(default_factory=dict)


FAULTS = [
    Fault(
        "shop-cpu",
        latency={"payment": 6.0, "checkout": 3.0, "frontend": 1.6},
        cpu={"payment": 10.0},
    ),
    Fault("shop-rollout", errors={"cart": 0.25, "frontend": 0.12}),
    Fault(
        "shop-node",
        latency={"checkout": 3.0, "payment": 3.0, "shipping": 3.0, "frontend": 1.5},
        cpu={"checkout": 1.3, "payment": 1.3, "shipping": 1.3},
        node_busy={2: 0.97},
    ),
    # A CPU hog also heats its node: the service, not the node, is the cause.
    Fault(
        "shop-hot",
        latency={"payment": 6.0, "checkout": 3.0},
        cpu={"payment": 10.0},
        node_busy={2: 0.6},
    ),
    # payment's network is slow: its callers wait 250 ms more, its own metrics do not move.
    Fault("shop-net", latency={"checkout": 4.0, "frontend": 1.8}, network_ms={"payment": 250.0}),
    # shipping's network drops packets: 8 % of the calls into it fail at the callers (resets),
    # its own proxy served every call it got; the callers' errors rise.
    Fault("shop-loss", errors={"checkout": 0.08, "frontend": 0.03}, dropped={"shipping": 0.08}),
    Fault(
        "shop-crash",
        errors={"cart": 0.3, "frontend": 0.15},
        restarts={"cart": 1.0},
        cpu={"cart": 0.3},
    ),
]


@dataclass(frozen=True)
class History:
    start: float
    end: float
    fault_at: float


def history_times(now: float) -> History:
    end = math.floor(now / STEP) * STEP - STEP
    return History(start=end - HISTORY_S, end=end, fault_at=end - 8 * 60)


def _fmt(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def openmetrics(h: History) -> str:
    times = np.arange(h.start, h.end + 1, STEP)
    after = times >= h.fault_at
    rng = np.random.default_rng(7)
    families: dict[str, list[str]] = {}

    def add(name: str, labels: dict[str, str], values: np.ndarray) -> None:
        lines = families.setdefault(name, [])
        key = _fmt(labels)
        for t, v in zip(times, values, strict=True):
            lines.append(f"{name}{key} {v:.6g} {int(t)}")

    def noisy(level: float, rel: float = 0.03) -> np.ndarray:
        return level * (1 + rel * rng.standard_normal(times.size))

    def counter(rate: np.ndarray) -> np.ndarray:
        return np.cumsum(np.maximum(rate, 0) * STEP) + 1000.0

    for f in FAULTS:
        ns = f.namespace
        # Istio: requests per edge with 5xx share, and the server-side duration histogram.
        for src, dst in EDGES:
            share = RPS[dst] / max(1, sum(1 for _, d in EDGES if d == dst))
            total = noisy(share)
            err = np.where(after, f.errors.get(dst, 0.001), 0.001) * np.ones(times.size)
            base = {
                "reporter": "destination",
                "source_workload": src,
                "destination_workload": dst,
                "destination_workload_namespace": ns,
                "source_workload_namespace": ns,
            }
            add(
                "istio_requests_total", {**base, "response_code": "200"}, counter(total * (1 - err))
            )
            add("istio_requests_total", {**base, "response_code": "500"}, counter(total * err))
            mean = np.where(after, LATENCY_MS[dst] * f.latency.get(dst, 1.0), LATENCY_MS[dst])
            mean = mean * (1 + 0.03 * rng.standard_normal(times.size))
            # The caller's proxy: the callee's time plus the network, and resets on top.
            waited = mean + NETWORK_MS + np.where(after, f.network_ms.get(dst, 0.0), 0.0)
            dropped = np.where(after, f.dropped.get(dst, 0.0), 0.0) + err
            source = {**base, "reporter": "source"}
            add("istio_requests_total", {**source, "response_code": "200"},
                counter(total * (1 - dropped)))  # fmt: skip
            add("istio_requests_total", {**source, "response_code": "503"},
                counter(total * dropped))  # fmt: skip
            for labels, m in ((base, mean), (source, waited)):
                for le in [*BUCKETS, math.inf]:
                    cdf = 1 - np.exp(-le / m) if math.isfinite(le) else np.ones(times.size)
                    lab = {**labels, "le": "+Inf" if not math.isfinite(le) else str(le)}
                    add("istio_request_duration_milliseconds_bucket", lab, counter(total * cdf))
                add("istio_request_duration_milliseconds_sum", labels, counter(total * m))
                add("istio_request_duration_milliseconds_count", labels, counter(total))
        for svc in SERVICES:
            pod, node = pod_name(svc), node_name(ns, NODE_OF[svc])
            lab = {"namespace": ns, "pod": pod, "container": svc, "node": node}
            cpu = np.where(after, CPU[svc] * f.cpu.get(svc, 1.0), CPU[svc])
            add("container_cpu_usage_seconds_total", lab, counter(cpu * noisy(1.0)))
            mem = np.where(after, MEMORY[svc] * f.memory.get(svc, 1.0), MEMORY[svc])
            add("container_memory_working_set_bytes", lab, mem * noisy(1.0, 0.01))
            rst = np.where(after, f.restarts.get(svc, 0.0) / 60.0, 0.0)
            add(
                "kube_pod_container_status_restarts_total",
                {"namespace": ns, "pod": pod, "container": svc},
                np.floor(np.cumsum(rst * STEP)),
            )
            add(
                "kube_deployment_status_replicas_available",
                {"namespace": ns, "deployment": svc},
                np.ones(times.size),
            )
            add(
                "kube_pod_info",
                {
                    "namespace": ns,
                    "pod": pod,
                    "node": node,
                    "host_ip": f"10.0.{NODE_OF[svc]}.1",
                    "created_by_kind": "ReplicaSet",
                    "created_by_name": pod.rsplit("-", 1)[0],
                },
                np.ones(times.size),
            )
        for i in (1, 2):
            node = node_name(ns, i)
            busy = np.where(after, f.node_busy.get(i, 0.3), 0.3) * noisy(1.0)
            lab = {"instance": f"{node}:9100", "node": node}
            add(
                "node_cpu_seconds_total",
                {**lab, "cpu": "0", "mode": "idle"},
                counter(1 - np.clip(busy, 0, 1)),
            )
            add("node_memory_MemAvailable_bytes", lab, noisy(4e9, 0.01))
            add("node_memory_MemTotal_bytes", lab, np.full(times.size, 8e9))
    out: list[str] = []
    for name in sorted(families):
        out.append(f"# TYPE {name} gauge")
        out.extend(families[name])
    out.append("# EOF")
    return "\n".join(out) + "\n"


@dataclass
class BackfilledPrometheus:
    url: str
    history: History


@contextlib.contextmanager
def backfilled_prometheus(now: float) -> Iterator[BackfilledPrometheus]:
    """A real Prometheus serving the shop's history, stopped afterwards."""
    import httpx

    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(promtool).exists() or not Path(binary).exists():
        raise RuntimeError("prometheus/promtool are not installed (apt-get install prometheus)")
    h = history_times(now)
    with tempfile.TemporaryDirectory(prefix="aiops-agent-prom-") as tmp:
        src = Path(tmp) / "shop.om"
        src.write_text(openmetrics(h))
        data = Path(tmp) / "data"
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(src), str(data)],
            check=True,
            capture_output=True,
        )
        config = Path(tmp) / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        port = free_port()
        log = (Path(tmp) / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                r = httpx.get(
                    url + "/api/v1/query",
                    params={"query": "kube_pod_info", "time": str(h.end)},
                    timeout=1,
                )
            except httpx.HTTPError:
                return False
            return r.status_code == 200 and bool(r.json()["data"]["result"])

        try:
            wait_until(ready, 30, "the backfilled Prometheus")
            yield BackfilledPrometheus(url=url, history=h)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class FakeCluster:
    """An in-memory ClusterReader for one shop namespace (the agent's port, implemented here)."""

    def __init__(self, ns: str, h: History, *, logs: dict[str, str] | None = None) -> None:
        self.ns = ns
        self.h = h
        self.logs = logs or {}
        self.replicasets: list[ReplicaSetInfo] = []
        self.pods: list[PodInfo] = []
        self.events: list[EventInfo] = []
        self.nodes = [
            NodeInfo(
                name=node_name(ns, i),
                conditions=[
                    NodeCondition(type="Ready", status="True", last_transition=_dt(h.start - 86400))
                ],
            )
            for i in (1, 2)
        ]
        self.calls: list[str] = []
        for svc in SERVICES:
            rs = pod_name(svc).rsplit("-", 1)[0]
            self.replicasets.append(
                ReplicaSetInfo(
                    name=rs,
                    namespace=ns,
                    deployment=svc,
                    revision=1,
                    created_at=_dt(h.start - 86400),
                    images=[f"shop/{svc}:1.0"],
                    replicas=1,
                )
            )
            self.pods.append(
                PodInfo(
                    name=pod_name(svc),
                    namespace=ns,
                    node=node_name(ns, NODE_OF[svc]),
                    phase="Running",
                    owner_kind="ReplicaSet",
                    owner_name=rs,
                    containers=[ContainerState(name=svc, ready=True)],
                )
            )

    def rollout(self, svc: str, at: float) -> str:
        name = f"{svc}-5f6c7d8e9a"
        self.replicasets.append(
            ReplicaSetInfo(
                name=name,
                namespace=self.ns,
                deployment=svc,
                revision=2,
                created_at=_dt(at),
                images=[f"shop/{svc}:1.1"],
                replicas=1,
            )
        )
        return name

    def list_replicasets(self, namespace: str) -> list[ReplicaSetInfo]:
        self.calls.append("list_replicasets")
        return list(self.replicasets)

    def list_deployments(self, namespace: str) -> list[DeploymentInfo]:
        self.calls.append("list_deployments")
        return [
            DeploymentInfo(name=s, namespace=namespace, replicas=1, available_replicas=1)
            for s in SERVICES
        ]

    def list_pods(self, namespace: str) -> list[PodInfo]:
        self.calls.append("list_pods")
        return list(self.pods)

    def list_events(self, namespace: str) -> list[EventInfo]:
        self.calls.append("list_events")
        return list(self.events)

    def list_nodes(self) -> list[NodeInfo]:
        self.calls.append("list_nodes")
        return list(self.nodes)

    def pod_logs(self, namespace: str, pod: str, *, tail_lines: int = 200) -> str:
        self.calls.append(f"pod_logs:{pod}")
        return self.logs.get(pod, "")
