"""Scoring root-cause analysis against the lab's fault scenarios (issue 5's live-lab targets).

Pure helpers for bench/bench_lab_rca.py: which RCA fault type each lab fault kind is, where the
true root cause landed in a report, and the per-scenario table and summary. No network I/O here;
the bench drives the lab and the investigation.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aiops.domain import FaultType, RcaReport

#: The RCA fault type (what the planner chooses playbooks by) each lab fault kind is.
FAULT_TYPE: dict[str, FaultType] = {
    "cpu_hog": FaultType.CPU,
    "memory_leak": FaultType.MEMORY,
    # The lab's latency and packet loss act on the pod's network, as chaos tools inject them:
    # the callers wait and see resets, the service's own proxy sees nothing.
    "latency": FaultType.NETWORK_LATENCY,
    "packet_loss": FaultType.NETWORK_LOSS,
    "bad_rollout": FaultType.BAD_ROLLOUT,
    "crashloop": FaultType.CRASHLOOP,
    "traffic_surge": FaultType.TRAFFIC_SURGE,
    "node_pressure": FaultType.NODE,
    "dependency_down": FaultType.DEPENDENCY,
}


def expected_fault(kind: str) -> FaultType:
    try:
        return FAULT_TYPE[kind]
    except KeyError:
        raise ValueError(
            f"no RCA fault type for lab fault kind {kind!r}; known: {', '.join(sorted(FAULT_TYPE))}"
        ) from None


def rank_of(report: RcaReport, root_cause: str) -> int | None:
    """1-based position of the root cause among the report's hypotheses (None: not there)."""
    for i, h in enumerate(report.hypotheses, start=1):
        if h.target == root_cause:
            return i
    return None


@dataclass
class RcaResult:
    """One scenario: what was expected, what the investigation said, how long it took."""

    name: str
    root_cause: str
    fault: str  # expected RCA fault type
    playbook: str  # expected playbook
    moment: str = "detection"  # when the investigation ran: as the detector flagged, or later
    rank: int | None = None
    top: str | None = None
    top_fault: str | None = None
    top_confidence: float | None = None
    chosen_playbook: str | None = None
    latency_s: float | None = None  # the investigate activity, call to return
    trigger: str = ""  # what opened the incident: the detection pass, or the fallback
    incident_after_fault_s: float | None = None  # incident opened this long after the fault
    investigated_after_fault_s: float | None = None
    anomalies: int = 0
    hypotheses: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def rank1(self) -> bool:
        return self.rank == 1

    @property
    def rank1_fault(self) -> bool:
        return self.rank == 1 and self.top_fault == self.fault

    @property
    def playbook_ok(self) -> bool:
        return self.chosen_playbook == self.playbook

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rank1": self.rank1,
            "rank1_fault": self.rank1_fault,
            "playbook_ok": self.playbook_ok,
        }


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile (no interpolation: with a dozen samples, p95 is the worst but one
    or the worst, as a person reading the table would count)."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 1)) - 1))
    return ordered[k]


def summary(results: Sequence[RcaResult]) -> dict[str, Any]:
    n = len(results)
    lat = [r.latency_s for r in results if r.latency_s is not None]
    return {
        "scenarios": n,
        "rank1": sum(r.rank1 for r in results),
        "rank1_rate": round(sum(r.rank1 for r in results) / n, 3) if n else None,
        "rank1_fault": sum(r.rank1_fault for r in results),
        "rank1_fault_rate": round(sum(r.rank1_fault for r in results) / n, 3) if n else None,
        "playbook_ok": sum(r.playbook_ok for r in results),
        "in_top3": sum(r.rank is not None and r.rank <= 3 for r in results),
        "latency_p50_s": _round(statistics.median(lat) if lat else None),
        "latency_p95_s": _round(nearest_rank(lat, 0.95)),
        "latency_max_s": _round(max(lat) if lat else None),
        "detected": sum(r.trigger == "detection" for r in results),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def table(results: Sequence[RcaResult]) -> str:
    head = (
        f"{'scenario':24} {'root cause':22} {'rank':>4} {'top (fault)':38} "
        f"{'fault':>5} {'playbook':28} {'inv s':>6} {'at':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        top = f"{r.top} ({r.top_fault})" if r.top else (r.error or "-")
        ok = "ok" if r.rank1_fault else ("-" if r.rank1 else "")
        pb = f"{r.chosen_playbook or '-'}{'' if r.playbook_ok else ' (want ' + r.playbook + ')'}"
        at = r.investigated_after_fault_s
        opened = "-" if at is None else f"+{at:.0f}s"
        lat = "-" if r.latency_s is None else f"{r.latency_s:.2f}"
        lines.append(
            f"{r.name:24} {r.root_cause + ' (' + r.fault + ')':22} "
            f"{r.rank if r.rank is not None else '-':>4} {top[:38]:38} {ok:>5} "
            f"{pb[:28]:28} {lat:>6} {opened:>7}"
        )
    return "\n".join(lines)
