"""Fault type of a ranked service, from its metric evidence and recent changes.

Metric names differ between exporters, so the kind of a metric is read from words in its name
(`cpu`, `mem`, `latency`/`lat`/`duration`, `error`/`success`, `restart`, `node_`, request counts).
Resource saturation is a cause, latency usually a symptom: when a resource metric stands out
almost as much as the latency, the resource wins.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from enum import StrEnum

from aiops.domain import FaultType
from aiops.rca.blame import ERRORS as EDGE_ERRORS
from aiops.rca.blame import is_edge_metric
from aiops.rca.models import ChangeEvidence, ChangeKind, MetricEvidence


class Family(StrEnum):
    CPU = "cpu"
    MEMORY = "memory"
    LATENCY = "latency"
    ERRORS = "errors"
    RESTARTS = "restarts"
    TRAFFIC = "traffic"
    NODE = "node"
    AVAILABILITY = "availability"
    NETWORK = "network"
    OTHER = "other"


_WORDS = {
    Family.RESTARTS: re.compile(r"restart|crash|oom|terminat"),
    Family.ERRORS: re.compile(r"error|fail|5xx|success|exception"),
    Family.LATENCY: re.compile(r"latency|(^|_)lat(_|$)|duration|response_time|(^|_)rt(_|$)"),
    Family.CPU: re.compile(r"cpu|throttl"),
    Family.MEMORY: re.compile(r"mem|rss|heap|working_set"),
    Family.AVAILABILITY: re.compile(r"avail|(^|_)ready|(^|_)up$"),
    Family.TRAFFIC: re.compile(r"workload|request|(^|_)rps|(^|_)qps|(^|_)lod(_|$)|throughput|load"),
}


@functools.lru_cache(maxsize=4096)
def family_of(metric: str) -> Family:
    name = metric.lower()
    if name.startswith("node_"):
        return Family.NODE
    if is_edge_metric(name):  # the service graph's pseudo-metrics
        return Family.LATENCY if "latency" in name else Family.NETWORK
    for fam, rx in _WORDS.items():
        if rx.search(name):
            return fam
    return Family.OTHER


# A resource metric counts as the cause when its standing is at least this share of the top one.
RESOURCE_SHARE = 0.5
TRAFFIC_GROWTH = 1.5
CPU_PER_LOAD = 1.5  # CPU growth a load increase explains, relative to the load's growth
CPU_SHARE = 0.25
MEMORY_GROWTH = 2.5
ONSET_Z = 3.0


_OUTBOUND = re.compile(r"client|outbound|upstream|external|dependency")


def _outbound_only(evidence: Sequence[MetricEvidence], fam: Family) -> bool:
    """Every departed metric of this family measures calls the service makes, none the calls it
    serves: the service waits on something else (a slow or failing dependency)."""
    of_family = [e for e in evidence if family_of(e.metric) is fam and e.direction > 0]
    if fam is Family.ERRORS:
        of_family = [
            e
            for e in evidence
            if family_of(e.metric) is fam
            and (e.direction < 0 if "success" in e.metric.lower() else e.direction > 0)
        ]
    return bool(of_family) and all(_OUTBOUND.search(e.metric.lower()) for e in of_family)


# A release that broke something shows within minutes of its first new pods; one that went out
# longer than this before the service's metrics departed is not what the fault type is read from
# (it still counts, decayed, in the ranking).
RELEASE_LEAD_S = 180.0
_RELEASES = frozenset({ChangeKind.ROLLOUT, ChangeKind.CONFIG_CHANGE})


def _release_long_before(change: ChangeEvidence, evidence: Sequence[MetricEvidence]) -> bool:
    if change.kind not in _RELEASES:
        return False
    onsets = [e.onset for e in evidence if e.onset is not None and e.score >= ONSET_Z]
    return bool(onsets) and change.at < min(onsets) - RELEASE_LEAD_S


def classify(
    evidence: Sequence[MetricEvidence], changes: Sequence[ChangeEvidence] = ()
) -> FaultType:
    """Fault type for one service. `evidence` is that service's metrics, strongest first."""
    changes = [c for c in changes if not _release_long_before(c, evidence)]
    kinds = {c.kind for c in changes}
    restarts = sum(1 for c in changes if c.kind is ChangeKind.RESTART)
    # Containers that keep exiting (not OOM-killed) are a crash loop, whether or not a rollout
    # brought them: the pod statuses (or the restart counter) say more than the rollout.
    restarting = restarts >= 2 or any(
        family_of(e.metric) is Family.RESTARTS and e.direction > 0 and e.score >= ONSET_Z
        for e in evidence
    )
    if restarting and ChangeKind.OOM_KILL not in kinds:
        return FaultType.CRASHLOOP
    if ChangeKind.ROLLOUT in kinds or ChangeKind.CONFIG_CHANGE in kinds:
        return FaultType.BAD_ROLLOUT
    if ChangeKind.OOM_KILL in kinds:
        return FaultType.MEMORY
    if ChangeKind.CORDON in kinds:
        return FaultType.NODE
    if not evidence:
        return FaultType.CRASHLOOP if restarts else FaultType.UNKNOWN

    # Below ONSET_Z a metric has not departed at all; its family says nothing about the fault.
    evidence = [e for e in evidence if e.score >= ONSET_Z]
    if not evidence:
        return FaultType.UNKNOWN
    best: dict[Family, MetricEvidence] = {}
    for e in evidence:
        fam = family_of(e.metric)
        if fam not in best or e.peer_score > best[fam].peer_score:
            best[fam] = e
    # The service graph's pseudo-metrics are the callers' view of the same fault (a starved
    # process queues its callers and stretches its own calls): the service's own metrics are
    # weighed against each other, and the graph's evidence decides only what they leave open.
    own = [e.peer_score for e in evidence if not is_edge_metric(e.metric)]
    top = max(own) if own else max(e.peer_score for e in evidence)
    floor = RESOURCE_SHARE * top

    def strong(fam: Family, direction: int | None = None, share: float = RESOURCE_SHARE) -> bool:
        e = best.get(fam)
        if e is None or e.peer_score < share * top or e.peer_score <= 0 or e.score < ONSET_Z:
            return False
        return direction is None or e.direction == direction

    if strong(Family.RESTARTS, +1) or restarts:
        return FaultType.CRASHLOOP
    # No replica left available, and nothing restarting or leaking: the workload is down, and to
    # its callers it is a dependency that stopped answering (no restart fixes what is not there).
    avail = best.get(Family.AVAILABILITY)
    if (
        avail is not None
        and avail.direction < 0
        and avail.baseline > 0
        and avail.value <= 0
        and "unavail" not in avail.metric.lower()
    ):
        return FaultType.DEPENDENCY
    # A memory fault multiplies memory use; CPU stress moves it a little (measured: memory hogs
    # x2.9 and more, CPU hogs x2.2 at most). CPU saturation is a cause even when the latency it
    # causes stands out more, so it needs only a smaller share of the top standing.
    mem = best.get(Family.MEMORY)
    if (
        mem is not None
        and mem.direction > 0
        and mem.score >= ONSET_Z
        and (mem.ratio is not None and mem.ratio >= MEMORY_GROWTH)
    ):
        return FaultType.MEMORY
    # More requests drive CPU and latency up: when the request rate grew at least as visibly as
    # CPU, the load is the cause.
    # Latency and errors that follow a load increase stand out more than the load itself, so a
    # request rate up by half or more is the cause whatever its standing, unless CPU grew far
    # more than the load explains (a CPU hog that also draws retries).
    traffic, cpu = best.get(Family.TRAFFIC), best.get(Family.CPU)
    if (
        traffic is not None
        and traffic.direction > 0
        and traffic.ratio is not None
        and traffic.ratio >= TRAFFIC_GROWTH
        and (
            cpu is None
            or traffic.peer_score >= cpu.peer_score
            or (cpu.ratio is not None and cpu.ratio <= CPU_PER_LOAD * traffic.ratio)
        )
    ):
        return FaultType.TRAFFIC_SURGE
    if strong(Family.CPU, +1, share=CPU_SHARE):
        return FaultType.CPU
    if strong(Family.MEMORY, +1):
        return FaultType.MEMORY
    # The service graph blames the service's end of its edges (callers waited, it did not spend
    # the time): its network. Failures only its callers saw make it a lossy one.
    if strong(Family.NETWORK, +1):
        lossy = any(e.metric == EDGE_ERRORS and e.score >= ONSET_Z for e in evidence)
        return FaultType.NETWORK_LOSS if lossy else FaultType.NETWORK_LATENCY
    # Node-wide metrics blame the node only when nothing of the pod's own stands out more.
    if strong(Family.NODE, +1, share=1.0):
        return FaultType.NODE
    err = best.get(Family.ERRORS)
    if err is not None and err.peer_score >= floor and err.peer_score > 0 and err.score >= ONSET_Z:
        # A success rate that drops, or an error count that rises.
        went_bad = err.direction < 0 if "success" in err.metric.lower() else err.direction > 0
        if went_bad:
            return (
                FaultType.DEPENDENCY
                if _outbound_only(evidence, Family.ERRORS)
                else (FaultType.ERRORS)
            )
    if strong(Family.TRAFFIC, +1):
        return FaultType.TRAFFIC_SURGE
    if strong(Family.LATENCY, +1):
        return (
            FaultType.DEPENDENCY
            if _outbound_only(evidence, Family.LATENCY)
            else (FaultType.LATENCY)
        )
    # Nothing clear-cut: go by the strongest metric's family (an error metric that improved is no
    # evidence of errors, hence absent here). Every family left is bad only when it rises: a
    # request rate, CPU or latency that fell is no surge, hog or slowdown (a dip of requests
    # after another service's restart was read as a surge and scaled a healthy service).
    if evidence[0].direction < 0:
        return FaultType.UNKNOWN
    fam = family_of(evidence[0].metric)
    return {
        Family.CPU: FaultType.CPU,
        Family.MEMORY: FaultType.MEMORY,
        Family.LATENCY: FaultType.LATENCY,
        Family.NODE: FaultType.NODE,
        Family.TRAFFIC: FaultType.TRAFFIC_SURGE,
        Family.RESTARTS: FaultType.CRASHLOOP,
        Family.NETWORK: FaultType.NETWORK_LATENCY,
    }.get(fam, FaultType.UNKNOWN)
