"""Input and result of `open_incidents` (kept apart so workflows import no I/O)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from aiops.activities.contracts import RulesSnapshot
from aiops.domain import Anomaly

OPEN_INCIDENTS = "open_incidents"


class OpenIncidentsInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    anomalies: list[Anomaly]
    # Ignored: every incident opens with the rules as their files say now. Detection loops
    # started by older code still send the rules they started with.
    rules: RulesSnapshot | None = None
    index: bool = True
    incident_id: str | None = Field(
        default=None,
        description="open or join exactly this incident with all the anomalies (an incident's "
        "follow-up) instead of grouping them into their namespaces' incidents",
    )


class OpenIncidentsResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_ids: list[str]
