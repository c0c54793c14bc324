"""The simulated Online Boutique.

Each `step(now)` reads the cluster (replicas, pods, nodes, revisions), lets the load generator's
traffic flow down the call graph, and derives from it what real exporters would count:

* capacity: each ready pod serves up to (CPU it can use) / (CPU per request) requests per second;
  the CPU it can use shrinks with a CPU hog in the container and with a pressured node;
* latency: own processing time grows with utilisation on a queueing curve (rho^4 / (1 - rho)) and
  adds the latency of every downstream call, so a slow callee makes its callers slow;
* errors: a pod over capacity sheds the excess (503), a bad revision returns 500s; a caller fails
  with a callee's failure with the call's criticality;
* the network, as chaos tools fault it (netem on the pod's interface): a latency fault delays every
  packet leaving the pod, so its callers wait longer for its answers and its own calls take longer
  to arrive, while its own sidecar (which sits inside the pod) measures no more time; packet loss
  resets calls through the pod (only the caller sees them fail) and retransmissions slow the rest.
  Each sidecar reports what it saw: the callee's (`reporter="destination"`) the calls it served,
  the caller's (`reporter="source"`) every call it made, with the wire's delay and resets;
* CPU and memory per container from load, plus the faults'; a container over its memory limit is
  reported OOMKilled, one of a crashing revision exits with Error (the cluster restarts them).

All randomness comes from seeded generators, so a run is reproducible given the seed and the
sequence of `step` times. Requests are counted flavour-neutrally (aiops_lab.sim.requests); the
flavour (Istio, OpenTelemetry, Linkerd) only decides how the exporter names them.
"""

from __future__ import annotations

import itertools
import math
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from aiops_lab.ports import BEHAVIOUR_ANNOTATION, ClusterPort, ClusterSnapshot, PodState
from aiops_lab.sim.exposition import Family, Labels
from aiops_lab.sim.faults import (
    ActiveFault,
    Behaviour,
    Fault,
    FaultKind,
    NoiseKind,
    Severity,
    format_behaviour,
    next_image,
    parse_behaviour,
)
from aiops_lab.sim.flavors import flavor_named
from aiops_lab.sim.requests import LATENCY_SIGMA, RequestLedger
from aiops_lab.sim.topology import (
    CALLS,
    LOADGENERATOR,
    NAMESPACE,
    SERVICES,
    TOPOLOGICAL_ORDER,
    callees,
)
from aiops_lab.sim.traffic import Spike, Traffic

READY_DELAY = 2.0  # seconds from container start until the readiness probe passes
IDLE_CPU_CORES = 0.003
NODE_SYSTEM_CPU = 0.15
NODE_SYSTEM_MEMORY = 1.0 * 1024**3
RHO_CAP = 0.98
CFS_PERIOD_S = 0.1
# node_pressure: extra load on the node itself (cores, bytes) per unit of (1 - cpu_share)
PRESSURE_STRESS_CORES = 3.6
PRESSURE_MEMORY = 6.0 * 1024**3
PRESSURE_LATENCY_MS = 40.0
# Linux's minimum TCP retransmission timeout: a call that lost a segment waits this much more.
TCP_RTO_MS = 200.0


@dataclass
class _Container:
    """What cAdvisor knows of one container instance of a pod."""

    restarts: int
    started_at: float
    cpu_seconds: float = 0.0
    cfs_periods: float = 0.0
    cfs_throttled_periods: float = 0.0
    cfs_throttled_seconds: float = 0.0
    memory: float = 0.0
    exited: bool = False  # reported to the cluster, waiting for the kubelet to restart it


@dataclass
class _PodView:
    pod: PodState
    running: bool  # container up (not in back-off)
    serving: bool  # receives traffic: running, ready, not terminating
    behaviour: Behaviour
    rate: float = 0.0
    served: float = 0.0
    shed: float = 0.0
    own_ms: float = 0.0
    p_own_500: float = 0.0
    p_own_503: float = 0.0
    cpu: float = 0.0
    throttled: float = 0.0  # share of CFS periods throttled
    hog: float = 0.0
    leak_bytes: float = 0.0
    node_share: float = 1.0
    extra_ms: float = 0.0


@dataclass
class ServiceStatus:
    """What `aiops lab status` shows per service."""

    name: str
    desired: int
    ready: int
    rps_in: float
    error_ratio: float
    mean_latency_ms: float
    utilisation: float
    revision: int
    # What its callers saw (their sidecars): its answers plus the wire's delay and resets.
    callers_error_ratio: float = 0.0
    callers_latency_ms: float = 0.0


@dataclass
class _ServiceFlow:
    rate_in: float = 0.0
    served: float = 0.0
    p_fail: float = 1.0  # probability a caller sees this service fail a request
    p500: float = 0.0
    p503: float = 0.0
    mean_ms: float = 0.0
    pods: list[_PodView] = field(default_factory=list)
    medians: list[float] = field(default_factory=list)  # per serving pod, total latency median
    utilisation: float = 0.0


class Shop:
    """The simulated shop. Thread-safe: `step`, `inject` and `families` take one lock, so an
    HTTP scrape never sees a half-updated tick."""

    def __init__(
        self,
        cluster: ClusterPort,
        seed: int = 0,
        traffic: Traffic | None = None,
        namespace: str = NAMESPACE,
        metrics: str = "istio",
    ) -> None:
        """`metrics`: the request-metrics flavour the exporter speaks (istio, otel, linkerd);
        the shop behaves the same in each."""
        self.cluster = cluster
        self.seed = seed
        self.traffic = traffic or Traffic(rps=50.0, seed=seed)
        self.namespace = namespace
        self.rng = np.random.default_rng(seed)
        self.lock = threading.RLock()
        self.now: float | None = None
        self.faults: list[ActiveFault] = []
        self._ids = itertools.count(1)
        self._containers: dict[str, _Container] = {}  # by pod uid
        self.flavor = flavor_named(metrics)
        self.requests = RequestLedger(self.flavor.grid_ms, seed)
        self._node_cpu: dict[tuple[str, str], float] = {}  # (node, mode) -> seconds, all cpus
        self._snapshot: ClusterSnapshot | None = None
        self._flows: dict[str, _ServiceFlow] = {}
        self._wire: Callable[[str, str], tuple[float, float]] = _no_wire
        self._node_busy: dict[str, dict[str, float]] = {}
        self._pod_views: dict[str, _PodView] = {}
        self._images: dict[tuple[str, int], str] = {}
        # Requests per second from callers outside the call graph (a CronJob calling a backend),
        # by (source workload, destination service).
        self.external: dict[tuple[str, str], float] = {}

    def continue_from(self, history: Shop) -> None:
        """Carry request and node counters over from the backfilled history, so counters stay
        monotonic across the seam between history and the live run (per-pod counters belong to
        pods that no longer exist and start afresh)."""
        with self.lock, history.lock:
            self.requests.continue_from(history.requests)
            self._node_cpu = dict(history._node_cpu)

    # --- faults ------------------------------------------------------------------------------

    def inject(self, fault: Fault, now: float | None = None) -> ActiveFault:
        """Inject a fault now. Revision faults are shipped through the cluster as a rollout;
        process faults bind to the target's pods that exist right now."""
        with self.lock:
            t = now if now is not None else (self.now if self.now is not None else 0.0)
            snap = self.cluster.snapshot()
            active = ActiveFault(
                id=f"f{next(self._ids)}-{fault.kind}-{fault.target}",
                fault=fault,
                started=t,
                until=t + fault.duration if fault.duration is not None else None,
            )
            if fault.kind in (FaultKind.CPU_HOG, FaultKind.MEMORY_LEAK):
                active.pod_uids = frozenset(
                    p.uid for p in snap.pods if p.deployment == fault.target and not p.deleting
                )
            elif fault.kind is FaultKind.BAD_ROLLOUT:
                active.revision = self._ship(
                    snap, fault.target, Behaviour(error_rate=fault.magnitude()), new_image=True
                )
            elif fault.kind is FaultKind.CRASHLOOP:
                crash = str(fault.params.get("reason", "bad-config"))
                active.revision = self._ship(
                    snap,
                    fault.target,
                    Behaviour(crash=crash, crash_after=fault.magnitude()),
                    new_image=False,
                )
            self.faults.append(active)
            return active

    def noise(
        self,
        kind: NoiseKind,
        target: str | None,
        now: float,
        duration: float | None = None,
        magnitude: float | None = None,
    ) -> None:
        """Changes that are not faults: a healthy release, seasonality, a short burst."""
        with self.lock:
            if kind is NoiseKind.BENIGN_ROLLOUT:
                if target is None:
                    raise ValueError("benign_rollout needs a target deployment")
                self._ship(self.cluster.snapshot(), target, None, new_image=True)
            elif kind is NoiseKind.TRAFFIC_SEASONALITY:
                self.traffic.extra_seasonality = magnitude if magnitude is not None else 0.3
                self.traffic.seasonality_start = now
                self.traffic.seasonality_period = duration if duration is not None else 600.0
            elif kind is NoiseKind.SHORT_SPIKE:
                self.traffic.spikes.append(
                    Spike(
                        now,
                        duration if duration is not None else 15.0,
                        magnitude if magnitude is not None else 1.8,
                    )
                )

    def end_faults(self, ids: set[str]) -> None:
        """End these faults now (a scenario is over). Faults shipped as a revision live on in
        the cluster until it is rolled back; this only forgets them here."""
        with self.lock:
            self.faults = [f for f in self.faults if f.id not in ids]

    def clear_faults(self, kind: FaultKind | None = None) -> None:
        """End every fault, or those of one kind: the way out of faults that have no remedy in
        the cluster (latency, packet loss, dependency down). Revisions shipped by bad_rollout or
        crashloop stay in the cluster until rolled back."""
        with self.lock:
            self.faults = [f for f in self.faults if kind is not None and f.fault.kind != kind]

    def _ship(
        self, snap: ClusterSnapshot, deployment: str, behaviour: Behaviour | None, new_image: bool
    ) -> int:
        dep = next(
            (d for d in snap.deployments if d.name == deployment and d.namespace == self.namespace),
            None,
        )
        if dep is None:
            raise ValueError(f"no deployment {deployment!r} in namespace {self.namespace!r}")
        image = next_image(dep.image) if new_image else dep.image
        annotations = {BEHAVIOUR_ANNOTATION: format_behaviour(behaviour or Behaviour())}
        return self.cluster.rollout(self.namespace, deployment, image, annotations)

    # --- the tick ----------------------------------------------------------------------------

    def step(self, now: float) -> None:
        with self.lock:
            dt = 0.0 if self.now is None else max(now - self.now, 0.0)
            self.now = now
            self.faults = [f for f in self.faults if f.until is None or f.until > now]
            snap = self.cluster.snapshot()
            self._snapshot = snap
            for d in snap.deployments:  # pods of an older revision keep their image
                self._images.setdefault((d.name, d.revision), d.image)
            views = self._sync_pods(snap)
            self._flows = self._flow(snap, views, now)
            self._account(snap, views, dt)
            self._kubelet(snap, views)
            self._pod_views = {v.pod.uid: v for v in views}

    def _faults(self, kind: FaultKind) -> Iterable[ActiveFault]:
        return (f for f in self.faults if f.fault.kind is kind)

    def _sync_pods(self, snap: ClusterSnapshot) -> list[_PodView]:
        views: list[_PodView] = []
        live: set[str] = set()
        unavailable = {f.fault.target for f in self._faults(FaultKind.DEPENDENCY_DOWN)}
        for pod in snap.pods:
            if pod.namespace != self.namespace or pod.deployment not in SERVICES:
                continue
            live.add(pod.uid)
            # A container instance is known by its start time. A cluster may count the restart
            # at exit and change started_at only when the kubelet starts the next instance
            # (after back-off), or set started_at to the future restart at once: both work.
            c = self._containers.get(pod.uid)
            if c is None or c.started_at != pod.started_at:
                # A new container: cAdvisor starts its counters from zero.
                c = _Container(restarts=pod.restarts, started_at=pod.started_at)
                self._containers[pod.uid] = c
            elif pod.restarts > c.restarts:
                c.exited = True  # it died (whoever noticed) and has not been restarted yet
            c.restarts = pod.restarts
            running = (
                pod.phase == "Running"
                and pod.node is not None
                and not c.exited
                and 0 < pod.started_at <= snap.at
            )
            behaviour = parse_behaviour(pod.template_annotations.get(BEHAVIOUR_ANNOTATION))
            serving = (
                running and pod.ready and not pod.deleting and pod.deployment not in unavailable
            )
            views.append(_PodView(pod=pod, running=running, serving=serving, behaviour=behaviour))
        for uid in list(self._containers):
            if uid not in live:
                del self._containers[uid]
        return views

    def _flow(
        self, snap: ClusterSnapshot, views: list[_PodView], now: float
    ) -> dict[str, _ServiceFlow]:
        flows = {name: _ServiceFlow() for name in SERVICES}
        for v in views:
            flows[v.pod.deployment].pods.append(v)
        surge = {f.fault.target: f.fault.magnitude() for f in self._faults(FaultKind.TRAFFIC_SURGE)}
        self._wire = self._wire_faults()
        pressured = {
            f.fault.target: f.fault.magnitude() for f in self._faults(FaultKind.NODE_PRESSURE)
        }
        hogs = list(self._faults(FaultKind.CPU_HOG))
        leaks = list(self._faults(FaultKind.MEMORY_LEAK))
        node_ready = {n.name: n.ready for n in snap.nodes}

        flows["frontend"].rate_in = self.traffic.rate(now)
        for (_, target), rps in self.external.items():
            flows[target].rate_in += rps
        # Load flows down the graph; shed requests never reach the callees.
        for name in TOPOLOGICAL_ORDER:
            spec = SERVICES[name]
            fl = flows[name]
            fl.rate_in *= surge.get(name, 1.0)
            serving = [v for v in fl.pods if v.serving]
            per_pod = fl.rate_in / len(serving) if serving else 0.0
            capacity_total = 0.0
            demand_total = 0.0
            for v in fl.pods:
                limit = _cpu_limit(v.pod)
                v.hog = sum(f.fault.magnitude() * limit for f in hogs if v.pod.uid in f.pod_uids)
                # A leak grows from when it began in this container (a restarted container
                # starts clean and leaks again: the bug is still in the process).
                v.leak_bytes = sum(
                    (_memory_limit(v.pod) - spec.memory_base_bytes)
                    / max(f.fault.magnitude(), 1.0)
                    * _spread(v.pod.uid)
                    * max(snap.at - max(v.pod.started_at, f.started), 0.0)
                    for f in leaks
                    if v.pod.uid in f.pod_uids
                )
                node = v.pod.node or ""
                v.node_share = pressured.get(node, 1.0) if node_ready.get(node, True) else 0.0
                v.extra_ms = PRESSURE_LATENCY_MS * (1 - v.node_share) if node in pressured else 0.0
                v.extra_ms += v.behaviour.extra_latency_ms
                if not v.running:
                    continue
                usable = max(limit * v.node_share - v.hog - IDLE_CPU_CORES, 0.02 * limit)
                mu = usable / spec.cpu_per_request
                if not v.serving:
                    v.cpu = (
                        min(limit * v.node_share, IDLE_CPU_CORES + v.hog) if v.node_share else 0.0
                    )
                    continue
                capacity_total += mu
                v.rate = per_pod
                rho = per_pod / mu
                v.shed = max(0.0, 1.0 - RHO_CAP / rho) if rho > RHO_CAP else 0.0
                v.served = per_pod * (1.0 - v.shed)
                r = min(rho, RHO_CAP)
                v.own_ms = spec.own_ms * (1.0 + r**4 / (1.0 - r)) + v.extra_ms
                v.cpu = min(
                    limit * v.node_share, IDLE_CPU_CORES + v.hog + v.served * spec.cpu_per_request
                )
                # CFS throttling: requests arrive in bursts, so periods hit the quota well
                # before the average use does; from ~70 % of the limit on, more and more do.
                demand = IDLE_CPU_CORES + v.hog + per_pod * spec.cpu_per_request
                v.throttled = min(max((demand / limit - 0.7) / 0.3, 0.0), 1.0)
                v.p_own_500 = v.behaviour.error_rate
                demand_total += per_pod
            fl.served = sum(v.served for v in fl.pods)
            fl.utilisation = demand_total / capacity_total if capacity_total else 0.0
            for call in callees(name):
                flows[call.destination].rate_in += fl.served * call.per_request

        # Latency and failures flow back up: callees first.
        for name in reversed(TOPOLOGICAL_ORDER):
            fl = flows[name]
            serving = [v for v in fl.pods if v.serving]
            down_ms = 0.0
            ok_prop = 1.0
            for call in callees(name):
                dst = flows[call.destination]
                wire_ms, lost = self._wire(name, call.destination)
                down_ms += call.per_request * (dst.mean_ms + wire_ms)
                # fewer than one call per request: only that share of requests can fail
                p = call.criticality * (1.0 - (1.0 - dst.p_fail) * (1.0 - lost))
                ok_prop *= (
                    (1.0 - p) ** call.per_request
                    if call.per_request >= 1
                    else 1.0 - call.per_request * p
                )
            p_prop = 1.0 - ok_prop
            if not serving:
                fl.p_fail, fl.p500, fl.p503, fl.mean_ms = 1.0, 0.0, 1.0, 0.0
                continue
            n = len(serving)
            p500 = p503 = mean = 0.0
            fl.medians = []
            for v in serving:
                # shed (503), else connection reset (503), else own bug or a callee (500)
                admitted = (1.0 - v.shed) * (1.0 - v.p_own_503)
                p503_v = v.shed + (1.0 - v.shed) * v.p_own_503
                p500_v = admitted * (1.0 - (1.0 - v.p_own_500) * (1.0 - p_prop))
                p500 += p500_v / n
                p503 += p503_v / n
                median = v.own_ms + down_ms
                fl.medians.append(median)
                mean += median * math.exp(LATENCY_SIGMA**2 / 2) / n
            fl.p500, fl.p503 = min(p500, 1.0), min(p503, 1.0)
            fl.p_fail = min(fl.p500 + fl.p503, 1.0)
            fl.mean_ms = mean
        return flows

    def _wire_faults(self) -> Callable[[str, str], tuple[float, float]]:
        """(caller, callee) -> (ms the wire adds to a call, share of calls reset on the way)."""
        delay = {f.fault.target: f.fault.magnitude() for f in self._faults(FaultKind.LATENCY)}
        loss = {f.fault.target: f.fault.magnitude() for f in self._faults(FaultKind.PACKET_LOSS)}

        def wire(src: str, dst: str) -> tuple[float, float]:
            # Both ends' packets cross a faulted interface: the request leaving the caller, the
            # answer leaving the callee.
            lost = 1.0 - (1.0 - loss.get(src, 0.0)) * (1.0 - loss.get(dst, 0.0))
            return delay.get(src, 0.0) + delay.get(dst, 0.0) + lost * TCP_RTO_MS, lost

        return wire

    def _account(self, snap: ClusterSnapshot, views: list[_PodView], dt: float) -> None:
        # cAdvisor: container CPU and working set.
        for v in views:
            c = self._containers[v.pod.uid]
            spec = SERVICES[v.pod.deployment]
            if not v.running:
                continue
            c.cpu_seconds += v.cpu * dt
            periods = dt / CFS_PERIOD_S
            c.cfs_periods += periods
            c.cfs_throttled_periods += periods * v.throttled
            # a throttled period waits out, on average, half of it
            c.cfs_throttled_seconds += periods * v.throttled * CFS_PERIOD_S * 0.5
            c.memory = spec.memory_base_bytes + spec.memory_per_rps_bytes * v.served + v.leak_bytes
            c.memory *= 1.0 + 0.004 * float(self.rng.standard_normal())
        if dt <= 0:
            return
        # Requests as each destination counted the calls that reached it (side "server"), and as
        # each caller saw every call it made (side "client": the wire's delay, its resets).
        latency: dict[str, tuple[np.ndarray, float]] = {}
        surge = {f.fault.target: f.fault.magnitude() for f in self._faults(FaultKind.TRAFFIC_SURGE)}
        for src, dst, rate in self._edge_rates(surge):
            fl = self._flows[dst]
            if rate <= 0:
                continue
            n = int(self.rng.poisson(rate * dt))
            if not fl.medians:
                if src != LOADGENERATOR:
                    # No healthy upstream: only the caller sees it (connection refused).
                    self.requests.observe("client", src, dst, "503", n, None, 0.5)
                continue
            if dst not in latency:
                latency[dst] = self.requests.bucket_probs(fl.medians)
            probs, mean_ms = latency[dst]
            wire_ms, lost = self._wire(src, dst)
            reset = int(self.rng.binomial(n, lost)) if lost else 0
            p_ok = max(1.0 - fl.p500 - fl.p503, 0.0)
            counts = self.rng.multinomial(n - reset, _normalise([p_ok, fl.p500, fl.p503]))
            c_probs, c_mean = (
                self.requests.bucket_probs([m + wire_ms for m in fl.medians])
                if wire_ms
                else (probs, mean_ms)
            )
            for code, k in zip(("200", "500", "503"), counts, strict=True):
                if k or code == "200":
                    self.requests.observe("server", src, dst, code, int(k), probs, mean_ms)
                    self.requests.observe("client", src, dst, code, int(k), c_probs, c_mean)
            if reset:
                self.requests.observe("client", src, dst, "503", reset, c_probs, c_mean)
        # node_exporter: CPU seconds by mode, summed over the node's CPUs.
        self._node_busy = {}
        pressured = {
            f.fault.target: f.fault.magnitude() for f in self._faults(FaultKind.NODE_PRESSURE)
        }
        for node in snap.nodes:
            user = sum(v.cpu for v in views if v.pod.node == node.name and v.running)
            stress = (
                PRESSURE_STRESS_CORES * (1 - pressured[node.name])
                if node.name in pressured
                else 0.0
            )
            system = NODE_SYSTEM_CPU * 0.4 + stress * 0.5
            iowait = 0.01 + stress * 0.5
            user += NODE_SYSTEM_CPU * 0.6
            busy = min(user + system + iowait, node.cpu_cores)
            idle = node.cpu_cores - busy
            modes = {"user": user, "system": system, "iowait": iowait, "idle": idle}
            self._node_busy[node.name] = modes
            for mode, cores in modes.items():
                key = (node.name, mode)
                self._node_cpu[key] = self._node_cpu.get(key, 0.0) + max(cores, 0.0) * dt

    def _edge_rates(self, surge: dict[str, float]) -> list[tuple[str, str, float]]:
        """Requests per second on every edge the destination's sidecar counts. A surge into a
        backend arrives over its callers' edges (they call it that much more often)."""
        frontend = self._flows["frontend"]
        outside = sum(rps for (_, dst), rps in self.external.items() if dst == "frontend")
        edges = [(LOADGENERATOR, "frontend", frontend.rate_in - outside * surge.get("frontend", 1))]
        edges += [
            (
                c.source,
                c.destination,
                self._flows[c.source].served * c.per_request * surge.get(c.destination, 1.0),
            )
            for c in CALLS
        ]
        edges += [
            (src, dst, rps * surge.get(dst, 1.0)) for (src, dst), rps in self.external.items()
        ]
        return edges

    def _kubelet(self, snap: ClusterSnapshot, views: list[_PodView]) -> None:
        """Report what a kubelet would see: OOM kills, crashing containers, readiness."""
        unavailable = {f.fault.target for f in self._faults(FaultKind.DEPENDENCY_DOWN)}
        for v in views:
            pod = v.pod
            if pod.phase != "Running" or pod.deleting or pod.node is None:
                continue
            c = self._containers[pod.uid]
            up_for = snap.at - pod.started_at
            if v.running and c.memory >= _memory_limit(pod):
                self._exit(pod, c, "OOMKilled", 137)
                continue
            if v.running and v.behaviour.crash and up_for >= v.behaviour.crash_after:
                self._exit(pod, c, "Error", 1)
                continue
            want = (
                v.running
                and up_for >= READY_DELAY
                and not v.behaviour.crash
                and pod.deployment not in unavailable
            )
            if want != pod.ready:
                self.cluster.set_pod_ready(pod.namespace, pod.name, want)

    def _exit(self, pod: PodState, c: _Container, reason: str, code: int) -> None:
        c.exited = True
        c.memory = 0.0
        self.cluster.report_container_exit(pod.namespace, pod.name, reason, code)
        if pod.ready:
            self.cluster.set_pod_ready(pod.namespace, pod.name, False)

    # --- reading -----------------------------------------------------------------------------

    def status(self) -> list[ServiceStatus]:
        with self.lock:
            snap = self._snapshot
            out: list[ServiceStatus] = []
            for name in SERVICES:
                fl = self._flows.get(name, _ServiceFlow())
                dep = next((d for d in snap.deployments if d.name == name), None) if snap else None
                callers = [c.source for c in CALLS if c.destination == name]
                callers += [LOADGENERATOR] if name == "frontend" else []
                wires = [self._wire(src, name) for src in callers]
                wire_ms = max((w for w, _ in wires), default=0.0)
                lost = max((lost for _, lost in wires), default=0.0)
                served = fl.p_fail if fl.rate_in else 0.0
                out.append(
                    ServiceStatus(
                        name=name,
                        desired=dep.spec_replicas if dep else 0,
                        ready=sum(1 for v in fl.pods if v.serving),
                        rps_in=fl.rate_in,
                        error_ratio=fl.p_fail if fl.rate_in else 0.0,
                        mean_latency_ms=fl.mean_ms,
                        utilisation=fl.utilisation,
                        revision=dep.revision if dep else 0,
                        callers_error_ratio=1.0 - (1.0 - served) * (1.0 - lost),
                        callers_latency_ms=fl.mean_ms + wire_ms,
                    )
                )
            return out

    def families(self) -> list[Family]:
        """Every metric family as it stands after the last step."""
        from aiops_lab.sim.metrics import collect

        with self.lock:
            return collect(self)


def _no_wire(src: str, dst: str) -> tuple[float, float]:
    return 0.0, 0.0


def _cpu_limit(pod: PodState) -> float:
    """A pod without a CPU limit gets its service's default (not the node: keeps the model sane)."""
    return (
        pod.cpu_limit_cores if pod.cpu_limit_cores > 0 else SERVICES[pod.deployment].cpu_limit_cores
    )


def _memory_limit(pod: PodState) -> float:
    return (
        pod.memory_limit_bytes
        if pod.memory_limit_bytes > 0
        else SERVICES[pod.deployment].memory_limit_bytes
    )


def _spread(uid: str) -> float:
    """A stable per-pod factor in [0.85, 1.15]: pods of one deployment do not leak in lockstep."""
    return 0.85 + 0.3 * (zlib.crc32(uid.encode()) % 1000) / 999


def _normalise(p: list[float]) -> list[float]:
    total = sum(p)
    if total <= 0:
        return [1.0] + [0.0] * (len(p) - 1)
    return [x / total for x in p]


__all__ = ["Fault", "FaultKind", "Labels", "ServiceStatus", "Severity", "Shop"]
