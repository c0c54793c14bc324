"""`open_incidents`: the detection loop's (and an incident's follow-up's) way to open or join
incidents. The activity adapts the workflow's input to the intake the worker wires in
(aiops.incidents.intake), which owns grouping, the rules as they are now, and signal-with-start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from temporalio import activity

from aiops.activities.intake_contracts import (
    OPEN_INCIDENTS,
    OpenIncidentsInput,
    OpenIncidentsResult,
)
from aiops.domain import Anomaly


class Intake(Protocol):
    async def open_or_join(
        self, anomalies: list[Anomaly], *, index: bool, incident_id: str | None = None
    ) -> list[str]: ...


class IntakeActivities:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    @activity.defn(name=OPEN_INCIDENTS)
    async def open_incidents(self, inp: OpenIncidentsInput) -> OpenIncidentsResult:
        ids = await self.intake.open_or_join(
            inp.anomalies, index=inp.index, incident_id=inp.incident_id
        )
        return OpenIncidentsResult(incident_ids=ids)

    def all(self) -> list[Callable[..., object]]:
        return [self.open_incidents]
