"""The metrics every flavour of the lab has, as their exporters write them: cAdvisor,
kube-state-metrics and node_exporter (metric names and label names as on a real cluster, so
PromQL written against the lab works there).

Counters are monotonic per series; a restarted container starts a new series of cAdvisor
counters from zero under the same pod name, a replaced pod appears under its new name.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from aiops_lab.sim.exposition import Family, Labels
from aiops_lab.sim.faults import FaultKind
from aiops_lab.sim.shop import NODE_SYSTEM_MEMORY, PRESSURE_MEMORY
from aiops_lab.sim.topology import NODES, SERVICES

if TYPE_CHECKING:
    from aiops_lab.sim.shop import Shop


def container_name(deployment: str) -> str:
    """The container's name as the upstream Online Boutique manifests (and the lab cluster) have
    it: `server`, `redis` for redis-cart. Select a service's containers by pod name or join
    with kube_pod_info."""
    return "redis" if deployment == "redis-cart" else "server"


def _pod_ip(uid: str, node: str | None) -> str:
    h = hashlib.blake2s(uid.encode(), digest_size=2).digest()
    idx = NODES.index(node) if node in NODES else 9
    return f"10.244.{idx}.{h[0] % 250 + 2}"


def collect_cluster(shop: Shop) -> list[Family]:
    ns = shop.namespace
    snap = shop._snapshot
    fams: list[Family] = []
    if snap is None:
        return fams

    cpu = Family(
        "container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds."
    )
    mem = Family("container_memory_working_set_bytes", "gauge", "Current working set in bytes.")
    mem_limit = Family(
        "container_spec_memory_limit_bytes", "gauge", "Memory limit for the container."
    )
    periods = Family(
        "container_cpu_cfs_periods_total",
        "counter",
        "Number of elapsed enforcement period intervals.",
    )
    throttled = Family(
        "container_cpu_cfs_throttled_periods_total",
        "counter",
        "Number of throttled period intervals.",
    )
    throttled_s = Family(
        "container_cpu_cfs_throttled_seconds_total",
        "counter",
        "Total time duration the container has been throttled.",
    )
    quota = Family("container_spec_cpu_quota", "gauge", "CPU quota of the container.")
    period = Family("container_spec_cpu_period", "gauge", "CPU period of the container.")
    info = Family("kube_pod_info", "gauge", "Information about pod.")
    ready = Family(
        "kube_pod_status_ready", "gauge", "Describes whether the pod is ready to serve requests."
    )
    phase = Family("kube_pod_status_phase", "gauge", "The pods current phase.")
    restarts = Family(
        "kube_pod_container_status_restarts_total",
        "counter",
        "The number of container restarts per container.",
    )
    last_term = Family(
        "kube_pod_container_status_last_terminated_reason",
        "gauge",
        "Describes the last reason the container was in terminated state.",
    )
    waiting = Family(
        "kube_pod_container_status_waiting_reason",
        "gauge",
        "Describes the reason the container is currently in waiting state.",
    )
    c_ready = Family(
        "kube_pod_container_status_ready",
        "gauge",
        "Describes whether the containers readiness check succeeded.",
    )
    res_limits = Family(
        "kube_pod_container_resource_limits",
        "gauge",
        "The number of requested limit resource by a container.",
    )
    views = shop._pod_views
    for pod in sorted(snap.pods, key=lambda p: p.name):
        if pod.namespace != ns or pod.deployment not in SERVICES:
            continue
        container = container_name(pod.deployment)
        node = pod.node or ""
        view = views.get(pod.uid)
        c = shop._containers.get(pod.uid)
        image = shop._images.get((pod.deployment, pod.revision), SERVICES[pod.deployment].image)
        if view is not None and view.running and c is not None:
            lb: Labels = (
                ("container", container),
                ("image", image),
                ("namespace", ns),
                ("node", node),
                ("pod", pod.name),
            )
            cpu.add((*lb, ("cpu", "total")), round(c.cpu_seconds, 6))
            if pod.cpu_limit_cores:  # only a container with a quota is throttled
                periods.add(lb, int(c.cfs_periods))
                throttled.add(lb, int(c.cfs_throttled_periods))
                throttled_s.add(lb, round(c.cfs_throttled_seconds, 6))
            mem.add(lb, round(c.memory))
            mem_limit.add(lb, pod.memory_limit_bytes)
            quota.add(lb, round(pod.cpu_limit_cores * 100000) if pod.cpu_limit_cores else -1)
            period.add(lb, 100000)
        rs = pod.name.rsplit("-", 1)[0]
        info.add(
            (
                ("created_by_kind", "ReplicaSet"),
                ("created_by_name", rs),
                ("host_ip", f"192.168.49.{NODES.index(node) + 2}" if node in NODES else ""),
                ("host_network", "false"),
                ("namespace", ns),
                ("node", node),
                ("pod", pod.name),
                ("pod_ip", _pod_ip(pod.uid, pod.node) if node else ""),
                ("priority_class", ""),
                ("uid", pod.uid),
            ),
            1,
        )
        pl: Labels = (("namespace", ns), ("pod", pod.name), ("uid", pod.uid))
        for cond in ("true", "false", "unknown"):
            ready.add(
                (("condition", cond), *pl),
                1 if (cond == "true") == pod.ready and cond != "unknown" else 0,
            )
        for ph in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
            phase.add((*pl, ("phase", ph)), 1 if pod.phase == ph else 0)
        cl: Labels = (("container", container), *pl)
        restarts.add(cl, pod.restarts)
        c_ready.add(cl, 1 if pod.ready else 0)
        if pod.last_terminated_reason:
            last_term.add((*cl, ("reason", pod.last_terminated_reason)), 1)
        if pod.phase == "Running" and view is not None and not view.running:
            reason = "CrashLoopBackOff" if pod.restarts > 0 else "ContainerCreating"
            waiting.add((*cl, ("reason", reason)), 1)
        if pod.cpu_limit_cores:
            res_limits.add(
                (*cl, ("node", node), ("resource", "cpu"), ("unit", "core")), pod.cpu_limit_cores
            )
        if pod.memory_limit_bytes:
            res_limits.add(
                (*cl, ("node", node), ("resource", "memory"), ("unit", "byte")),
                pod.memory_limit_bytes,
            )
    fams += [
        cpu,
        periods,
        throttled,
        throttled_s,
        mem,
        mem_limit,
        quota,
        period,
        info,
        ready,
        phase,
        restarts,
        last_term,
        waiting,
        c_ready,
        res_limits,
    ]

    spec = Family(
        "kube_deployment_spec_replicas", "gauge", "Number of desired pods for a deployment."
    )
    avail = Family(
        "kube_deployment_status_replicas_available",
        "gauge",
        "The number of available replicas per deployment.",
    )
    unavail = Family(
        "kube_deployment_status_replicas_unavailable",
        "gauge",
        "The number of unavailable replicas per deployment.",
    )
    for d in sorted(snap.deployments, key=lambda d: d.name):
        if d.namespace != ns:
            continue
        dl: Labels = (("deployment", d.name), ("namespace", ns))
        spec.add(dl, d.spec_replicas)
        avail.add(dl, d.available_replicas)
        unavail.add(dl, max(d.spec_replicas - d.available_replicas, 0))
    fams += [spec, avail, unavail]

    unsched = Family(
        "kube_node_spec_unschedulable", "gauge", "Whether a node can schedule new pods."
    )
    cond_f = Family("kube_node_status_condition", "gauge", "The condition of a cluster node.")
    node_cpu = Family("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.")
    mem_avail = Family(
        "node_memory_MemAvailable_bytes", "gauge", "Memory information field MemAvailable_bytes."
    )
    mem_total = Family(
        "node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal_bytes."
    )
    pressured = {
        f.fault.target: f.fault.magnitude()
        for f in shop.faults
        if f.fault.kind is FaultKind.NODE_PRESSURE
    }
    for n in sorted(snap.nodes, key=lambda n: n.name):
        unsched.add((("node", n.name),), 1 if n.unschedulable else 0)
        for status in ("true", "false", "unknown"):
            cond_f.add(
                (("condition", "Ready"), ("node", n.name), ("status", status)),
                1 if (status == "true") == n.ready and status != "unknown" else 0,
            )
        # instance as node_exporter's target would have it (kept by honor_labels); the job is
        # the lab's scrape job, so one Prometheus can scrape several shops apart.
        nl: Labels = (("instance", f"{n.name}:9100"), ("node", n.name))
        cores = max(int(n.cpu_cores), 1)
        for cpu_i in range(cores):
            for mode in ("idle", "iowait", "system", "user"):
                total = shop._node_cpu.get((n.name, mode), 0.0)
                node_cpu.add((("cpu", str(cpu_i)), *nl, ("mode", mode)), round(total / cores, 3))
        used = sum(
            c.memory
            for uid, c in shop._containers.items()
            if (v := views.get(uid)) is not None and v.pod.node == n.name and v.running
        )
        pressure = PRESSURE_MEMORY * (1 - pressured[n.name]) if n.name in pressured else 0.0
        mem_avail.add(
            nl, round(max(n.memory_bytes - NODE_SYSTEM_MEMORY - used - pressure, 64 * 1024**2))
        )
        mem_total.add(nl, n.memory_bytes)
    fams += [unsched, cond_f, node_cpu, mem_avail, mem_total]
    return fams
