"""Anomalies become incidents here, the one way: grouped by namespace, each group opens or joins
its namespace's IncidentWorkflow (signal-with-start) with the rules as their files say now.

The detection loop calls it through the `open_incidents` activity, the Alertmanager webhook
directly. Times from outside (Alertmanager's `startsAt`, anomaly times from a Prometheus whose
clock runs ahead) are clamped to now, with a note the incident's audit trail shows. Alertmanager
re-sends a firing alert for as long as it fires: a delivery of an alert an incident already had
opens no second incident.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from aiops.detect.grouping import AnomalyGroup, group_anomalies
from aiops.domain import Anomaly, Incident, Severity
from aiops.incidents.client import IncidentClient
from aiops.incidents.errors import IncidentError
from aiops.incidents.reader import read_anomalies
from aiops.incidents.rules import RulesError, RulesSource
from aiops.integrations.alertmanager import AnomalySink, SinkUnavailableError
from aiops.logs import get_logger
from aiops.temporal_setup import SEARCH_ATTRIBUTES
from workflows.detection import DetectionLoopInput, DetectionLoopWorkflow

log = get_logger(__name__)

DETECTION_LOOP_ID = "aiops-detection-loop"
# With its own start in the future (a skewed clock), an alert counts as the same alert as one an
# incident closed on within this long.
SKEWED_ALERT_WINDOW = timedelta(hours=24)


def clamp(anomaly: Anomaly, now: datetime) -> tuple[Anomaly, str | None]:
    """The anomaly with its times no later than now, and a note when one was later."""
    if anomaly.start <= now:
        return anomaly, None
    window = anomaly.evidence_window
    if window is not None:
        window = (min(window[0], now), min(window[1], now))
    clamped = anomaly.model_copy(update={"start": now, "evidence_window": window})
    ahead = _ahead(anomaly.start, now)
    note = (
        f"{anomaly.source} reported {anomaly.signal} of {anomaly.entity} starting at "
        f"{anomaly.start.isoformat()}, {ahead} ahead of this clock: counted from now "
        f"({now.isoformat()})"
    )
    return clamped, note


def incident_of(group: AnomalyGroup, now: datetime) -> Incident:
    """The incident a group of anomalies opens (what the investigation is given)."""
    anomalies, notes = [], []
    for raw in group.anomalies:
        anomaly, note = clamp(raw, now)
        anomalies.append(anomaly)
        if note:
            notes.append(note)
    severity = Severity.CRITICAL if anomalies[0].score >= 0.9 else Severity.WARNING
    return Incident(
        id=group.incident_id,
        fingerprint=group.fingerprint,
        namespace=group.namespace,
        service=group.service,
        opened_at=min(a.start for a in anomalies),
        anomalies=anomalies,
        severity=severity,
        notes=notes,
    )


class AnomalyIntake:
    def __init__(self, incidents: IncidentClient, rules: RulesSource) -> None:
        self.incidents = incidents
        self.rules = rules

    async def open_or_join(
        self, anomalies: list[Anomaly], *, index: bool, incident_id: str | None = None
    ) -> list[str]:
        """Open the incident of each namespace, or join the one still open; return their ids.
        With `incident_id`, all the anomalies open or join that one incident (a follow-up)."""
        now = datetime.now(UTC)
        anomalies = await self._drop_redelivered(anomalies, now)
        groups = group_anomalies(anomalies)
        if incident_id is not None and groups:
            first = groups[0]
            groups = [
                AnomalyGroup(
                    incident_id=incident_id,
                    fingerprint=first.fingerprint,
                    namespace=first.namespace,
                    service=first.service,
                    anomalies=[a for g in groups for a in g.anomalies],
                )
            ]
        if not groups:
            return []
        rules = self.rules.current()  # as the files say now: an edit reaches the next incident
        ids = []
        for group in groups:
            incident = incident_of(group, now)
            await self.incidents.open_or_join(incident, rules, index=index)
            log.info(
                "incident opened or joined",
                incident_id=incident.id,
                anomalies=len(group.anomalies),
                service=group.service,
                sources=sorted({a.source for a in group.anomalies}),
                policy=rules.policy.version(),
            )
            ids.append(incident.id)
        return ids

    async def _drop_redelivered(self, anomalies: list[Anomaly], now: datetime) -> list[Anomaly]:
        """Alerts an incident of the same namespace already had, and which closed since the
        alert started firing: Alertmanager sends a firing alert again every repeat interval,
        and that must not open a second incident for the same alert."""
        alerts = [a for a in anomalies if a.source == "alertmanager"]
        if not alerts:
            return anomalies
        seen: set[str] = set()
        for group in group_anomalies(alerts):
            since = min(
                a.start if a.start <= now else now - SKEWED_ALERT_WINDOW for a in group.anomalies
            )
            seen |= await self._closed_with(group.incident_id, since)
        kept = [a for a in anomalies if a.source != "alertmanager" or a.fingerprint() not in seen]
        if len(kept) < len(anomalies):
            log.info("alerts delivered again ignored", alerts=len(anomalies) - len(kept))
        return kept

    async def _closed_with(self, incident_id: str, since: datetime) -> set[str]:
        """Fingerprints of the anomalies of the incident's runs that closed after `since`."""
        stamp = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            runs = await self.incidents.find(
                limit=20,
                query=f"WorkflowId = '{incident_id}' AND ExecutionStatus != 'Running' "
                f"AND CloseTime >= '{stamp}'",
            )
        except RPCError as exc:
            # A visibility store that cannot answer must not block alerts: a repeated alert
            # may then open an incident again, which a person can close.
            log.warning("closed incidents not listed", incident_id=incident_id, error=exc.message)
            return set()
        seen: set[str] = set()
        for run in runs:
            try:
                _, anomalies = await read_anomalies(self.incidents, incident_id, run.run_id)
            except IncidentError:
                continue
            seen |= {a.fingerprint() for a in anomalies}
        return seen


async def search_attributes_ready(client: Client) -> bool:
    """Whether the namespace has every Aiops* search attribute (temporal/setup-namespace.sh)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError:
        return False
    return set(SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)


async def start_detection_loop(
    client: Client, task_queue: str, *, interval_s: float
) -> WorkflowHandle[DetectionLoopWorkflow, None]:
    """Start the one detection loop of this namespace, or return the one already running. It
    carries no rules: each incident it opens reads them from the files then."""
    index = await search_attributes_ready(client)
    return await client.start_workflow(
        DetectionLoopWorkflow.run,
        DetectionLoopInput(interval_s=interval_s, index=index),
        id=DETECTION_LOOP_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def incident_sink(intake: AnomalyIntake, *, index: bool) -> AnomalySink:
    """Where the Alertmanager webhook puts its anomalies: the incidents, opened or joined as the
    detection loop's are (an alert brings no rules of its own)."""

    async def sink(anomalies: list[Anomaly]) -> None:
        try:
            await intake.open_or_join(anomalies, index=index)
        except RPCError as exc:
            raise SinkUnavailableError(
                f"Temporal did not take the incident ({exc.message}); Alertmanager will retry"
            ) from exc
        except RulesError as exc:
            raise SinkUnavailableError(
                f"{exc}; no incident opens until the policy is fixed (Alertmanager will retry)"
            ) from exc

    return sink


def _ahead(then: datetime, now: datetime) -> str:
    seconds = (then - now).total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"
