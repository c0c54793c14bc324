"""Anomalies that join an open incident (the `add_anomalies` signal), and what the incident does
with those that join after its investigation: look at them, and open a follow-up incident for
those that point to another root cause, so a second fault in the same namespace is never
silently dropped."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from aiops.activities.contracts import INVESTIGATE_INCIDENT, InvestigateInput
    from aiops.activities.intake_contracts import (
        OPEN_INCIDENTS,
        OpenIncidentsInput,
        OpenIncidentsResult,
    )
    from aiops.domain import Anomaly, FaultType, Hypothesis, Incident, RcaReport
    from workflows.incident_messages import READ_RETRY, SYMPTOM_PATCH, AnomalyBatch, anomaly_key
    from workflows.steps import Note, cause_of


async def investigate(incident: Incident) -> RcaReport:
    """The investigation activity: the root-cause report of the incident's anomalies."""
    report: RcaReport = await workflow.execute_activity(
        INVESTIGATE_INCIDENT,
        InvestigateInput(incident=incident),
        result_type=RcaReport,
        start_to_close_timeout=timedelta(seconds=60),
        retry_policy=READ_RETRY,
    )
    return report


class Arrivals:
    def __init__(self, note: Note) -> None:
        self.note = note
        self.known: set[str] = set()
        self.joined: list[Anomaly] = []
        self.reviewed = 0  # joined[:reviewed] were part of an investigation or a review
        self.started = False

    def start(self, incident: Incident) -> None:
        """The run began: its own anomalies are known, those the start signal repeated drop."""
        self.known.update(anomaly_key(a) for a in incident.anomalies)
        self.joined = [a for a in self.joined if anomaly_key(a) not in self.known]
        self.started = True

    def add(self, batch: AnomalyBatch) -> None:
        fresh = [a for a in batch.anomalies if anomaly_key(a) not in self.known]
        if self.started:
            self.known.update(anomaly_key(a) for a in fresh)
        self.joined.extend(fresh)
        if fresh and self.started:
            entities = sorted({a.entity for a in fresh})
            self.note("detector", f"{len(fresh)} more anomalies joined: {', '.join(entities)}")
            for line in batch.notes:
                self.note("intake", line)

    def pending(self) -> bool:
        return len(self.joined) > self.reviewed

    async def review(self, incident: Incident, report: RcaReport, index: bool) -> None:
        """Look at the anomalies that joined since the last look. Those of the workload this
        incident already blames are its own; the others are investigated, and if they point to
        another root cause (a second fault in the namespace) they open a follow-up incident."""
        fresh = self.joined[self.reviewed :]
        self.reviewed = len(self.joined)
        ours = report.top
        own = [a for a in fresh if ours is not None and a.entity == ours.target]
        others = [a for a in fresh if a not in own]
        if ours is not None and own:
            self.note(
                "aiops",
                f"{len(own)} anomalies that joined later are about {ours.target}, the root "
                "cause this incident handles",
            )
        if not others:
            return
        try:
            late = await investigate(incident.model_copy(update={"anomalies": others}))
        except ActivityError as exc:
            why = f"could not be investigated ({cause_of(exc)})"
            await self._follow_up(incident, others, why, index)
            return
        theirs = late.top
        same = (
            ours is not None
            and theirs is not None
            and ((theirs.target, theirs.namespace) == (ours.target, ours.namespace))
        )
        if theirs is None or same:
            cause = f"{theirs.target} ({theirs.fault.value})" if theirs else "no suspect"
            self.note(
                "aiops",
                f"{len(others)} anomalies that joined later ({_names(others)}) investigated: "
                f"{cause}, nothing beyond what this incident handles",
            )
            return
        if ours is not None and _symptoms_of(ours, late) and workflow.patched(SYMPTOM_PATCH):
            self.note(
                "aiops",
                f"{len(others)} anomalies that joined later ({_names(others)}) investigated: "
                f"{theirs.target} shows {theirs.fault.value} with no cause of its own, and the "
                f"next suspect is {ours.target}, the root cause this incident handles: its "
                "symptoms, no follow-up incident",
            )
            return
        why = f"point to another root cause, {theirs.target} ({theirs.fault.value})"
        await self._follow_up(incident, others, why, index)

    async def _follow_up(
        self, incident: Incident, fresh: list[Anomaly], why: str, index: bool
    ) -> None:
        said = f"{len(fresh)} anomalies that joined later ({_names(fresh)}) {why}"
        try:
            opened = await workflow.execute_activity(
                OPEN_INCIDENTS,
                OpenIncidentsInput(
                    anomalies=fresh,
                    index=index,
                    incident_id=f"{incident.id}-f{workflow.info().run_id[:8]}",
                ),
                result_type=OpenIncidentsResult,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=READ_RETRY,
            )
        except ActivityError as exc:
            self.note(
                "aiops",
                f"{said}; the follow-up incident could not be opened ({cause_of(exc)}): a "
                "person must look at them",
            )
            return
        self.note(
            "aiops", f"{said}: follow-up incident {', '.join(opened.incident_ids)} opened for them"
        )


#: Fault types that say what is seen, not what causes it: a service with only these has no
#: remedy of its own and is often a caller of the real fault.
_SYMPTOM_FAULTS = frozenset(
    {FaultType.ERRORS, FaultType.LATENCY, FaultType.DEPENDENCY, FaultType.UNKNOWN}
)


def _symptoms_of(ours: Hypothesis, late: RcaReport) -> bool:
    """The late anomalies' investigation finds no cause of their own (its top suspect only shows
    errors or latency) and names this incident's root cause next. Why: the callers of a fault
    join late (their rates over windows move after the faulty service's own), and once that
    fault is remedied their investigation sees a caller with errors and, next to it, the
    service that caused them; paging a person for it would be noise. A second fault with a
    cause of its own (a rollout, a leak, a hog, the network), or one whose investigation does
    not lead back to this root cause, still opens a follow-up."""
    if len(late.hypotheses) < 2:
        return False
    top, runner_up = late.hypotheses[:2]
    return top.fault in _SYMPTOM_FAULTS and (runner_up.target, runner_up.namespace) == (
        ours.target,
        ours.namespace,
    )


def _names(anomalies: list[Anomaly]) -> str:
    return ", ".join(sorted({a.entity for a in anomalies}))
