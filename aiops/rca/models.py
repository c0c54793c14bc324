"""Inputs and outputs of the root-cause ranking: a metrics matrix, change events, ranked services.

The matrix is a dataclass over numpy arrays (it never crosses a Temporal boundary); everything the
ranking returns is pydantic and JSON-serialisable so the agent can put it in an RcaReport.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from aiops.domain import FaultType


class RcaInputError(ValueError):
    """The ranking's input is unusable; the message says what is wrong and how to fix it."""


def service_of(column: str) -> str:
    """`<service>_<metric>`: the service is everything before the first underscore."""
    return column.split("_", 1)[0]


def metric_of(column: str) -> str:
    """The metric kind of a column (after the first underscore); the whole name if there is none."""
    parts = column.split("_", 1)
    return parts[1] if len(parts) == 2 else column


@dataclass(frozen=True)
class MetricsMatrix:
    """Time x metrics. `times` are unix seconds, ascending; `values[i, j]` is column j at times[i].

    Missing samples are NaN. Columns are named `<service>_<metric>`.
    """

    times: npt.NDArray[np.float64]
    columns: tuple[str, ...]
    values: npt.NDArray[np.float64]
    services: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        times = np.asarray(self.times, dtype=np.float64)
        values = np.asarray(self.values, dtype=np.float64)
        if times.ndim != 1:
            raise RcaInputError(f"times must be one-dimensional, got shape {times.shape}")
        if values.ndim != 2 or values.shape != (times.shape[0], len(self.columns)):
            raise RcaInputError(
                f"values must have shape (len(times), len(columns)) = "
                f"({times.shape[0]}, {len(self.columns)}), got {values.shape}"
            )
        if times.size > 1 and not np.all(np.diff(times) > 0):
            bad = int(np.argmax(np.diff(times) <= 0)) + 1
            raise RcaInputError(
                f"times must be strictly increasing: row {bad} has {times[bad]!r} after "
                f"{times[bad - 1]!r}; sort the rows and drop duplicates"
            )
        if len(set(self.columns)) != len(self.columns):
            dupes = sorted({c for c in self.columns if self.columns.count(c) > 1})
            raise RcaInputError(f"duplicate metric columns: {', '.join(dupes)}")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "values", values)
        seen: dict[str, None] = {}
        for c in self.columns:
            seen.setdefault(service_of(c), None)
        object.__setattr__(self, "services", tuple(seen))

    @classmethod
    def from_series(
        cls, times: Sequence[float], series: dict[str, Sequence[float]]
    ) -> MetricsMatrix:
        """Build from a column dict (each list aligned with `times`)."""
        cols = tuple(series)
        vals = (
            np.column_stack([np.asarray(series[c], dtype=np.float64) for c in cols])
            if cols
            else (np.empty((len(times), 0)))
        )
        return cls(times=np.asarray(times, dtype=np.float64), columns=cols, values=vals)


class ChangeKind(StrEnum):
    ROLLOUT = "rollout"
    CONFIG_CHANGE = "config_change"
    RESTART = "restart"
    OOM_KILL = "oom_kill"
    CORDON = "cordon"
    SCALE = "scale"


class ChangeEvent(BaseModel):
    """Something that changed in the cluster near the anomaly (from rollout history or events)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str = Field(description="the service (column prefix) or, for node events, the node")
    kind: ChangeKind
    at: datetime
    source: str = Field(default="", description="the Kubernetes object, e.g. Deployment/ns/name")
    detail: str = ""
    # Services running on a cordoned/failing node; lets a node event blame its workloads.
    affects: list[str] = Field(default_factory=list)

    @property
    def timestamp(self) -> float:
        at = self.at if self.at.tzinfo else self.at.replace(tzinfo=UTC)
        return at.timestamp()


class MetricEvidence(BaseModel):
    """One metric's departure from its baseline: the numbers a person can re-check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    metric: str
    score: float = Field(description="robust z: sustained |value - median| / scale of the baseline")
    direction: int = Field(description="+1 went up, -1 went down")
    baseline: float = Field(description="median of the normal period")
    scale: float = Field(description="robust spread of the normal period (IQR/1.349, floored)")
    value: float = Field(description="the value at the sustained peak after the anomaly time")
    onset: float | None = Field(default=None, description="unix seconds of the first exceedance")
    ratio: float | None = Field(
        default=None, description="value / baseline, when the baseline is positive"
    )
    peer_score: float = Field(
        default=0.0, description="how far this score stands out among services for the same metric"
    )


class EdgeEvidence(BaseModel):
    """One departed edge as a person can re-check it: both sides' latency before and after."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: str
    server: str
    statistic: str = Field(description="the latency statistic each side reports: mean, p50, ...")
    kind: Literal["gap", "errors", "server"]
    score: float = Field(
        description="robust z of the departure: the caller's wait (gap), the callee's own time "
        "(server), or failures only the caller saw (errors)"
    )
    network_share: float = Field(description="share of the client rise outside the callee")
    share: float = Field(description="share of this edge's departure blamed on this service")
    client_before: float
    client_after: float
    server_before: float
    server_after: float
    client_errors_after: float | None = None
    server_errors_after: float | None = None
    onset: float | None = None

    @property
    def name(self) -> str:
        return f"{self.client} → {self.server}"


class ChangeEvidence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ChangeKind
    at: float
    source: str
    detail: str
    bonus: float


class ServiceScore(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    score: float
    confidence: float = Field(ge=0.0, le=1.0)
    fault: FaultType = FaultType.UNKNOWN
    onset: float | None = None
    anomaly_score: float = 0.0
    topology_score: float = 0.0
    change_score: float = 0.0
    evidence: list[MetricEvidence] = Field(default_factory=list)
    changes: list[ChangeEvidence] = Field(default_factory=list)
    edges: list[EdgeEvidence] = Field(
        default_factory=list, description="departed edges of the service graph blamed on it"
    )


class RcaRanking(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    anomaly_time: float = Field(description="unix seconds the ranking compared before/after at")
    alarm_time: float = Field(description="the time given; differs when the onset was estimated")
    ranked: list[ServiceScore] = Field(description="most likely root cause first")
    notes: list[str] = Field(default_factory=list)

    @property
    def services(self) -> list[str]:
        return [s.service for s in self.ranked]
