"""Fault kinds, their severity tables, and how a revision's behaviour is written on its pod
template (so that a rollback removes it the way it would remove a real bad release)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    CPU_HOG = "cpu_hog"
    MEMORY_LEAK = "memory_leak"
    LATENCY = "latency"
    PACKET_LOSS = "packet_loss"
    BAD_ROLLOUT = "bad_rollout"
    CRASHLOOP = "crashloop"
    TRAFFIC_SURGE = "traffic_surge"
    NODE_PRESSURE = "node_pressure"
    DEPENDENCY_DOWN = "dependency_down"


class NoiseKind(StrEnum):
    BENIGN_ROLLOUT = "benign_rollout"
    TRAFFIC_SEASONALITY = "traffic_seasonality"
    SHORT_SPIKE = "short_spike"
    # Everyday operations (aiops_lab.sim.operators): a person draining a node or scaling a
    # deployment, an autoscaler, a CronJob calling a backend on its schedule.
    NODE_DRAIN = "node_drain"
    AUTOSCALE = "autoscale"
    CRONJOB = "cronjob"
    SCALE = "scale"  # a person sets a deployment's replicas (magnitude), e.g. before a sale


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# The correct response to each fault (the scenarios' ground truth, from issue 3).
EXPECTED_PLAYBOOK: dict[FaultKind, str] = {
    FaultKind.BAD_ROLLOUT: "rollback-deployment",
    FaultKind.CRASHLOOP: "rollback-deployment",
    FaultKind.MEMORY_LEAK: "restart-deployment",
    FaultKind.CPU_HOG: "restart-deployment",
    FaultKind.TRAFFIC_SURGE: "scale-deployment",
    FaultKind.NODE_PRESSURE: "cordon-and-drain-node",
    FaultKind.LATENCY: "escalate",
    FaultKind.PACKET_LOSS: "escalate",
    FaultKind.DEPENDENCY_DOWN: "escalate",
}

# Default magnitude per severity; a scenario's own parameter overrides it.
SEVERITY_DEFAULTS: dict[FaultKind, tuple[str, dict[Severity, float]]] = {
    # share of the container's CPU limit burnt by a runaway thread
    FaultKind.CPU_HOG: (
        "limit_share",
        {Severity.LOW: 0.5, Severity.MEDIUM: 0.75, Severity.HIGH: 0.95},
    ),
    # seconds from container start until the working set reaches the limit (then OOMKilled)
    FaultKind.MEMORY_LEAK: (
        "seconds_to_oom",
        {Severity.LOW: 240.0, Severity.MEDIUM: 120.0, Severity.HIGH: 45.0},
    ),
    FaultKind.LATENCY: (
        "delay_ms",
        {Severity.LOW: 60.0, Severity.MEDIUM: 250.0, Severity.HIGH: 800.0},
    ),
    FaultKind.PACKET_LOSS: ("loss", {Severity.LOW: 0.03, Severity.MEDIUM: 0.1, Severity.HIGH: 0.3}),
    FaultKind.BAD_ROLLOUT: (
        "error_rate",
        {Severity.LOW: 0.1, Severity.MEDIUM: 0.35, Severity.HIGH: 0.8},
    ),
    FaultKind.CRASHLOOP: (
        "crash_after",
        {Severity.LOW: 5.0, Severity.MEDIUM: 2.0, Severity.HIGH: 1.0},
    ),
    FaultKind.TRAFFIC_SURGE: (
        "multiplier",
        {Severity.LOW: 2.2, Severity.MEDIUM: 2.8, Severity.HIGH: 3.5},
    ),
    # share of each pod's CPU left to it on the pressured node
    FaultKind.NODE_PRESSURE: (
        "cpu_share",
        {Severity.LOW: 0.4, Severity.MEDIUM: 0.2, Severity.HIGH: 0.1},
    ),
    FaultKind.DEPENDENCY_DOWN: (
        "unavailable",
        {Severity.LOW: 1.0, Severity.MEDIUM: 1.0, Severity.HIGH: 1.0},
    ),
}


@dataclass
class Fault:
    """A fault to inject now. `params` holds the kind's own parameters (see SEVERITY_DEFAULTS);
    `duration` None means it lasts until remediated (or forever, for faults with no fix)."""

    kind: FaultKind
    target: str
    severity: Severity = Severity.MEDIUM
    params: dict[str, Any] = field(default_factory=dict)
    duration: float | None = None

    def magnitude(self) -> float:
        key, table = SEVERITY_DEFAULTS[self.kind]
        return float(self.params.get(key, table[self.severity]))


@dataclass
class ActiveFault:
    id: str
    fault: Fault
    started: float
    until: float | None
    # Process-level faults (cpu_hog, memory_leak) live in the pods that existed at injection.
    pod_uids: frozenset[str] = frozenset()
    revision: int | None = None  # for faults shipped as a rollout


# --- behaviour annotation -----------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    error_rate: float = 0.0
    crash: str | None = None
    crash_after: float = 2.0
    extra_latency_ms: float = 0.0


def format_behaviour(b: Behaviour) -> str:
    parts: list[str] = []
    if b.error_rate:
        parts.append(f"errors:{b.error_rate:g}")
    if b.crash:
        parts.append(f"crash:{b.crash}")
        parts.append(f"crash_after:{b.crash_after:g}")
    if b.extra_latency_ms:
        parts.append(f"latency_ms:{b.extra_latency_ms:g}")
    return ",".join(parts) or "ok"


def parse_behaviour(text: str | None) -> Behaviour:
    """Lenient on purpose: an annotation written by hand that we cannot read means 'healthy'."""
    if not text:
        return Behaviour()
    error_rate, crash, crash_after, latency = 0.0, None, 2.0, 0.0
    for part in text.split(","):
        key, _, value = part.strip().partition(":")
        try:
            if key == "errors":
                error_rate = min(max(float(value), 0.0), 1.0)
            elif key == "crash":
                crash = value or "bad-config"
            elif key == "crash_after":
                crash_after = float(value)
            elif key == "latency_ms":
                latency = float(value)
        except ValueError:
            continue
    return Behaviour(error_rate, crash, crash_after, latency)


_SEMVER = re.compile(r"^(v?)(\d+)\.(\d+)\.(\d+)$")


def next_image(image: str) -> str:
    """The image a release would ship next: bump the patch version of the tag."""
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image + ":lab-next"
    m = _SEMVER.match(tag)
    if m is None:
        return f"{repo}:{tag}-next"
    return f"{repo}:{m.group(1)}{m.group(2)}.{m.group(3)}.{int(m.group(4)) + 1}"
