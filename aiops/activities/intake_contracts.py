"""Input and result of `open_incidents` (kept apart so workflows import no I/O)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from aiops.activities.contracts import RulesSnapshot
from aiops.domain import Anomaly

OPEN_INCIDENTS = "open_incidents"


class OpenIncidentsInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    anomalies: list[Anomaly]
    rules: RulesSnapshot
    index: bool = True


class OpenIncidentsResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_ids: list[str]
