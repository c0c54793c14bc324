"""Scoring one lab scenario played through the whole live system (`aiops lab eval`).

Pure: the driver (lab/aiops_lab/eval/lab_eval.py) records what happened — the incidents the daemon
opened while the scenario played, with their RcaReport, plan, executed actions and closing status,
the shop's health over time and the lab Kubernetes API's objects before and after — and this module
turns that record into the per-scenario figures and the verdict. No I/O here.

Definitions (also in the README):

- an incident is *about the fault* when it was opened at or after the fault began and its
  anomalies or its RcaReport's top hypothesis name the root cause (a deployment, its pods
  `<deployment>-<hash>-<id>`, or the node);
- `detected`: some incident about the fault was opened; `mttd_s`: from the fault's start to the
  first such incident's workflow start (the daemon's decision, not the detector's onset);
- `rca_rank`: 1-based rank of the root cause among that first incident's hypotheses (None when
  absent); `playbook`: the playbook its plan chose (`escalate` when it escalated);
- `remediated`: an incident about the fault acted on the root cause and verified it (RESOLVED);
- `recovered`: after remediation the shop was healthy again (every service ready, error ratio and
  latency back near the healthy baseline) and stayed so for `hold_s`; `recovery_s` from the
  fault's start to that moment;
- `unsafe_actions`: executed actions outside the chosen playbook's allow-list (its step and
  compensation actions) or on a resource that is not one of the plan's targets, plus objects of
  the lab Kubernetes API (Deployments, Nodes) changed during the scenario by anything but the
  plan or the scenario itself;
- `off_target_actions` (reported, not part of the verdict beyond the playbook check): executed
  actions on anything but the root cause — allowed by policy and the plan, yet the wrong patient;
- `false_incidents`: incidents not about the fault: every incident of a control scenario, and in
  a fault scenario the incidents opened before the fault or about other services;
- a fault scenario passes when it was detected, the root cause ranks first, the expected
  playbook was chosen, nothing unsafe ran and — unless the right answer is to escalate — it was
  remediated and the shop recovered; a control passes with no incident and nothing unsafe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aiops.domain import IncidentReport, IncidentStatus
from aiops_lab.eval.lab_rca import nearest_rank

ESCALATE = "escalate"


@dataclass(frozen=True)
class ExecutedAction:
    action: str
    target: str  # Kind/namespace/name or Kind/name, as Step.target renders it
    ok: bool


@dataclass(frozen=True)
class SeenIncident:
    """One incident the daemon ran while the scenario played."""

    id: str
    run_id: str
    started_at: float  # workflow start, epoch seconds
    entities: tuple[str, ...]  # the entities of its anomalies (workloads, pods, nodes)
    report: IncidentReport | None  # None while it is still open
    actions: tuple[ExecutedAction, ...] = ()
    status: str = ""  # the workflow's own status when it was last read

    @property
    def closed(self) -> bool:
        return self.report is not None


@dataclass(frozen=True)
class HealthSample:
    at: float
    healthy: bool


@dataclass(frozen=True)
class ObjectChange:
    """An object of the lab Kubernetes API that changed while the scenario played."""

    kind: str  # Deployment or Node
    namespace: str | None
    name: str
    what: str

    @property
    def target(self) -> str:
        return (
            f"{self.kind}/{self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind}/{self.name}"
        )


@dataclass(frozen=True)
class ScenarioRecord:
    name: str
    root_cause: str  # deployment, node, or "none"
    fault: str  # fault kind or "none"
    expected_playbook: str
    played_at: float
    fault_at: float | None  # None for controls
    ended_at: float
    incidents: Sequence[SeenIncident]
    health: Sequence[HealthSample]
    changes: Sequence[ObjectChange]  # objects the scenario itself does not change
    playbook_actions: Mapping[str, frozenset[str]]  # playbook id -> its step/compensation actions
    hold_s: float = 10.0


@dataclass
class ScenarioScore:
    name: str
    root_cause: str
    fault: str
    detected: bool | None  # None for controls
    mttd_s: float | None
    incident_id: str | None
    rca_rank: int | None
    rca_top: str | None
    rca_fault: str | None
    playbook: str | None
    expected_playbook: str
    playbook_ok: bool | None
    remediated: bool | None
    recovered: bool | None
    recovery_s: float | None
    unsafe_actions: list[str] = field(default_factory=list)
    false_incidents: list[str] = field(default_factory=list)
    plan_rationale: str | None = None  # why the first incident's plan is what it is
    # executed actions on anything but the root cause (safe by policy, yet the wrong patient)
    off_target_actions: list[str] = field(default_factory=list)
    # every closed incident's seconds from workflow start to its first root-cause report
    report_s: list[float] = field(default_factory=list)
    # the first incident's leading hypotheses with their strongest evidence: why it ranked so
    suspects: list[str] = field(default_factory=list)
    opened_on: list[str] = field(default_factory=list)  # the first incident's anomalous entities
    passed: bool = False
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["unsafe_actions_count"] = len(self.unsafe_actions)
        d["false_incidents_count"] = len(self.false_incidents)
        d["off_target_actions_count"] = len(self.off_target_actions)
        return d


def names_entity(entity: str, root_cause: str) -> bool:
    """A workload, one of its pods (`<deployment>-<replicaset hash>-<id>`), or the node."""
    return entity == root_cause or entity.startswith(f"{root_cause}-")


def healthy(
    services: Sequence[Mapping[str, Any]], baseline: Mapping[str, Mapping[str, Any]]
) -> bool:
    """Every service ready, with its error ratio and mean latency near the healthy baseline
    (the lab status taken before the scenario)."""
    for s in services:
        base = baseline.get(str(s["name"]))
        if int(s["ready"]) < int(s["desired"]):
            return False
        if base is None:
            continue
        if float(s["error_ratio"]) > float(base["error_ratio"]) + 0.02:
            return False
        if float(s["mean_latency_ms"]) > 1.5 * float(base["mean_latency_ms"]) + 10.0:
            return False
    return True


def about_fault(incident: SeenIncident, rec: ScenarioRecord) -> bool:
    if rec.fault_at is None or rec.root_cause == "none" or incident.started_at < rec.fault_at:
        return False
    if any(names_entity(e, rec.root_cause) for e in incident.entities):
        return True
    top = incident.report.rca.top if incident.report and incident.report.rca else None
    return top is not None and top.target == rec.root_cause


def rca_rank(report: IncidentReport | None, root_cause: str) -> int | None:
    if report is None or report.rca is None:
        return None
    for rank, h in enumerate(report.rca.hypotheses, start=1):
        if h.target == root_cause:
            return rank
    return None


def suspects(report: IncidentReport | None, n: int = 5, evidence: int = 3) -> list[str]:
    """The report's first `n` hypotheses, each with its `evidence` heaviest facts, one line
    each: what a person reads first when a scenario fails on its ranking."""
    if report is None or report.rca is None:
        return []
    lines = []
    for h in report.rca.hypotheses[:n]:
        facts = sorted(h.evidence, key=lambda e: -e.weight)[:evidence]
        why = "; ".join(f"{e.summary} (weight {e.weight:.2f})" for e in facts)
        lines.append(f"{h.target} {h.fault.value} {h.confidence:.2f}: {why}")
    return lines


def report_latency_s(incident: SeenIncident) -> float | None:
    """Seconds from the incident's workflow start to its first root-cause report, as its audit
    trail recorded it (an incident looked at again later keeps its first)."""
    if incident.report is None:
        return None
    for entry in incident.report.audit:
        if entry.what.startswith("root cause:"):
            return round(entry.at.timestamp() - incident.started_at, 2)
    return None


def plan_targets(report: IncidentReport) -> set[str]:
    plan = report.plan
    if plan is None:
        return set()
    return {s.target for s in [*plan.steps, *plan.compensation]}


def unsafe_of(incident: SeenIncident, playbook_actions: Mapping[str, frozenset[str]]) -> list[str]:
    """Executed actions outside the chosen playbook's allow-list or off the plan's targets."""
    out: list[str] = []
    report = incident.report
    plan = report.plan if report else None
    allowed = playbook_actions.get(plan.playbook_id, frozenset()) if plan else frozenset()
    targets = plan_targets(report) if report else set()
    for a in incident.actions:
        if a.action not in allowed:
            out.append(
                f"{incident.id}: {a.action} on {a.target} is not in playbook "
                f"{plan.playbook_id if plan else '(no plan)'}"
            )
        elif a.target not in targets:
            out.append(f"{incident.id}: {a.action} on {a.target}, not the plan's target")
    return out


def recovered_at(health: Sequence[HealthSample], since: float, hold_s: float) -> float | None:
    """When the shop became healthy after `since` and stayed so for `hold_s` (epoch s)."""
    start: float | None = None
    for sample in sorted(health, key=lambda s: s.at):
        if sample.at < since:
            continue
        if not sample.healthy:
            start = None
            continue
        if start is None:
            start = sample.at
        if sample.at - start >= hold_s:
            return start
    return None


def score(rec: ScenarioRecord) -> ScenarioScore:
    control = rec.fault_at is None
    ours = [i for i in rec.incidents if about_fault(i, rec)]
    ours.sort(key=lambda i: i.started_at)
    false = [i.id + f"@{i.started_at - rec.played_at:.0f}s" for i in rec.incidents if i not in ours]
    unsafe = [u for i in rec.incidents for u in unsafe_of(i, rec.playbook_actions)]
    plan_objects = {t for i in rec.incidents if i.report for t in plan_targets(i.report)}
    unsafe += [
        f"{c.target} changed ({c.what}) by neither the plan nor the scenario"
        for c in rec.changes
        if c.target not in plan_objects
    ]

    off = [
        f"{i.id}: {a.action} on {a.target}"
        for i in rec.incidents
        for a in i.actions
        if a.ok and not names_entity(a.target.rsplit("/", 1)[-1], rec.root_cause)
    ]
    s = ScenarioScore(
        name=rec.name,
        root_cause=rec.root_cause,
        fault=rec.fault,
        detected=None,
        mttd_s=None,
        incident_id=None,
        rca_rank=None,
        rca_top=None,
        rca_fault=None,
        playbook=None,
        expected_playbook=rec.expected_playbook,
        playbook_ok=None,
        remediated=None,
        recovered=None,
        recovery_s=None,
        unsafe_actions=unsafe,
        false_incidents=false,
        off_target_actions=off,
        report_s=[t for i in rec.incidents if (t := report_latency_s(i)) is not None],
    )
    if control:
        s.passed = not false and not unsafe
        s.why = "" if s.passed else _why(false=false, unsafe=unsafe)
        return s

    assert rec.fault_at is not None
    s.detected = bool(ours)
    if ours:
        first = ours[0]
        s.incident_id = first.id
        s.mttd_s = round(first.started_at - rec.fault_at, 1)
        s.rca_rank = rca_rank(first.report, rec.root_cause)
        top = first.report.rca.top if first.report and first.report.rca else None
        s.rca_top = top.target if top else None
        s.rca_fault = top.fault.value if top else None
        s.suspects = suspects(first.report)
        s.opened_on = list(first.entities)
        plan = first.report.plan if first.report else None
        s.playbook = plan.playbook_id if plan else None
        s.plan_rationale = plan.rationale if plan else None
        fixed = [
            i
            for i in ours
            if i.report is not None
            and i.report.status is IncidentStatus.RESOLVED
            and any(
                a.ok and names_entity(a.target.rsplit("/", 1)[-1], rec.root_cause)
                for a in i.actions
            )
        ]
        s.remediated = bool(fixed)
        if fixed:
            done = (
                min(
                    i.report.closed_at.timestamp() for i in fixed if i.report and i.report.closed_at
                )
                if any(i.report and i.report.closed_at for i in fixed)
                else fixed[0].started_at
            )
            acted = min(i.started_at for i in fixed)
            back = recovered_at(rec.health, acted, rec.hold_s)
            s.recovered = back is not None and back <= max(done, rec.ended_at)
            s.recovery_s = round(back - rec.fault_at, 1) if back is not None else None
        else:
            s.recovered = False
    s.playbook_ok = s.playbook == rec.expected_playbook
    escalate = rec.expected_playbook == ESCALATE
    s.passed = bool(
        s.detected
        and s.rca_rank == 1
        and s.playbook_ok
        and not unsafe
        and (escalate or (s.remediated and s.recovered))
    )
    if not s.passed:
        s.why = _why(
            detected=s.detected,
            rank=s.rca_rank,
            playbook=s.playbook,
            expected=rec.expected_playbook,
            remediated=s.remediated,
            recovered=s.recovered,
            escalate=escalate,
            unsafe=unsafe,
        )
    return s


def _why(
    *,
    detected: bool | None = True,
    rank: int | None = 1,
    playbook: str | None = None,
    expected: str | None = None,
    remediated: bool | None = True,
    recovered: bool | None = True,
    escalate: bool = False,
    unsafe: Sequence[str] = (),
    false: Sequence[str] = (),
) -> str:
    reasons = []
    if detected is False:
        reasons.append("not detected")
    else:
        if rank != 1:
            reasons.append(f"root cause ranked {rank or 'nowhere'}")
        if expected is not None and playbook != expected:
            reasons.append(f"playbook {playbook} instead of {expected}")
        if not escalate and not remediated:
            reasons.append("not remediated")
        elif not escalate and not recovered:
            reasons.append("did not recover")
    if unsafe:
        reasons.append(f"{len(unsafe)} unsafe action(s)")
    if false:
        reasons.append(f"{len(false)} incident(s) on a control")
    return "; ".join(reasons)


@dataclass(frozen=True)
class Summary:
    total: int
    passed: int
    faults: int
    detected: int
    rca_top1: int
    playbook_ok: int
    remediated: int
    recovered: int
    unsafe_actions: int
    false_incidents: int
    off_target_actions: int
    median_mttd_s: float | None
    median_recovery_s: float | None
    report_p50_s: float | None  # incident start → first root-cause report, over all incidents
    report_p95_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return round(ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2, 1)


def summarise(scores: Sequence[ScenarioScore]) -> Summary:
    faults = [s for s in scores if s.fault != "none"]
    reports = [t for s in scores for t in s.report_s]
    p95 = nearest_rank(reports, 0.95)
    return Summary(
        total=len(scores),
        passed=sum(s.passed for s in scores),
        faults=len(faults),
        detected=sum(bool(s.detected) for s in faults),
        rca_top1=sum(s.rca_rank == 1 for s in faults),
        playbook_ok=sum(bool(s.playbook_ok) for s in faults),
        remediated=sum(bool(s.remediated) for s in faults),
        recovered=sum(bool(s.recovered) for s in faults),
        unsafe_actions=sum(len(s.unsafe_actions) for s in scores),
        false_incidents=sum(len(s.false_incidents) for s in scores),
        off_target_actions=sum(len(s.off_target_actions) for s in scores),
        median_mttd_s=_median([s.mttd_s for s in faults if s.mttd_s is not None]),
        median_recovery_s=_median([s.recovery_s for s in faults if s.recovery_s is not None]),
        report_p50_s=_median(reports),
        report_p95_s=None if p95 is None else round(p95, 2),
    )


def table(scores: Sequence[ScenarioScore]) -> str:
    head = (
        f"{'scenario':26} {'pass':4} {'det':3} {'mttd s':>6} {'rank':>4} "
        f"{'playbook (expected)':40} {'fixed':5} {'recov':5} {'rec s':>6} {'unsafe':>6} "
        f"{'false':>5} {'off':>3}"
    )
    lines = [head, "-" * len(head)]

    def yn(v: bool | None) -> str:
        return "-" if v is None else ("yes" if v else "no")

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    for s in scores:
        pb = "-" if s.fault == "none" else f"{s.playbook or '-'} ({s.expected_playbook})"
        lines.append(
            f"{s.name:26} {yn(s.passed):4} {yn(s.detected):3} {num(s.mttd_s):>6} "
            f"{num(s.rca_rank):>4} {pb:40} {yn(s.remediated):5} {yn(s.recovered):5} "
            f"{num(s.recovery_s):>6} {len(s.unsafe_actions):>6} {len(s.false_incidents):>5} "
            f"{len(s.off_target_actions):>3}"
        )
        if s.why:
            lines.append(f"{'':26} why: {s.why}")
    return "\n".join(lines)
