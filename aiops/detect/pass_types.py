"""What the detection pass works with: its settings, the queries it plans, what it returns, and
the state it keeps per signal between passes (aiops.detect.detection_pass drives them)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from aiops.detect.novelty import NoveltyConfig
from aiops.detect.presets import (
    LIVE_NORMAL_SECONDS,
    LIVE_NOVELTY_CONFIG,
    LIVE_PERSIST_SECONDS,
    NOVELTY_THRESHOLD,
)
from aiops.detect.tracker import SignalTracker
from aiops.domain.models import Anomaly
from aiops.profiles.signal import PassForm


class SeriesLike(Protocol):
    """One returned series: what aiops.integrations.prometheus.Series provides."""

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def timestamps(self) -> Sequence[float]: ...

    @property
    def values(self) -> Sequence[float]: ...


@dataclass(frozen=True)
class PassConfig:
    step_seconds: float = 15.0  # the detection interval; one detector sample per step
    prime_seconds: float = 3600.0  # history asked for on cold start (>= the detector warm-up)
    rate_window: str = "1m"  # $window of the catalog's rate() queries
    report_window_seconds: float = 600.0  # anomalies that started earlier are history, not news
    settle_seconds: float = 2.0  # newest grid time is this far behind now (scrapes in flight)
    evict_after_seconds: float = 86_400.0  # forget series unseen for this long
    threshold: float = NOVELTY_THRESHOLD
    detector: NoveltyConfig = LIVE_NOVELTY_CONFIG
    # Time constants in seconds, turned into the detector's per-step weights: the slow level a
    # persistent rise must move (bursts of load up to a minute move it by half their height
    # at most), and the normal level the minimum changes are measured from.
    persist_seconds: float = LIVE_PERSIST_SECONDS
    normal_seconds: float = LIVE_NORMAL_SECONDS

    def __post_init__(self) -> None:
        if not self.step_seconds > 0:
            raise ValueError("step_seconds must be > 0")
        if self.prime_seconds < 0:
            raise ValueError("prime_seconds must be >= 0")

    def step_detector(self) -> NoveltyConfig:
        """The detector with its time constants in this pass's steps."""
        return dataclasses.replace(
            self.detector,
            slow_alpha=-math.expm1(-self.step_seconds / self.persist_seconds),
            center_alpha=-math.expm1(-self.step_seconds / self.normal_seconds),
        )

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must match to be reused (the rest may change freely)."""
        fp = {
            "step_seconds": self.step_seconds,
            "rate_window": self.rate_window,
            "threshold": self.threshold,
            "detector": dataclasses.asdict(self.step_detector()),
        }
        normal: dict[str, Any] = json.loads(json.dumps(fp))  # as a checkpoint header holds it
        return normal


@dataclass(frozen=True)
class QueryPlan:
    """One query to run for a signal: an instant query when start == end, else a range."""

    signal: str
    promql: str
    start: datetime
    end: datetime
    step_seconds: float
    cold: bool  # the signal has no tracker state yet: this is the priming query
    # How to read the answer: its labels renamed, the signal split out of a shared answer
    # (aiops.detect.pass_answers); `form.promql` is `promql`.
    form: PassForm | None = None

    @property
    def key(self) -> str:
        """What the signal's tracker state is valid for (a new one starts it cold)."""
        return self.promql if self.form is None else self.form.key

    @property
    def instant(self) -> bool:
        return self.start == self.end

    @property
    def steps(self) -> int:
        return round((self.end - self.start).total_seconds() / self.step_seconds) + 1


@dataclass(frozen=True)
class SignalOutcome:
    signal: str
    status: Literal["ok", "failed", "up_to_date"]
    series: int = 0  # series returned
    steps: int = 0  # grid times scored
    error: str | None = None
    cold: bool = False


@dataclass(frozen=True)
class PassResult:
    at: datetime  # newest grid time scored
    anomalies: list[Anomaly]  # new episodes, strongest first
    outcomes: list[SignalOutcome]
    history_anomalies: int = 0  # episodes found in history older than the report window
    evicted_series: int = 0

    @property
    def failed(self) -> list[SignalOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


@dataclass
class Held:
    """A DOWN alarm waiting to see whether its series goes on (see the module docstring)."""

    col: int
    anomaly: Anomaly
    present: int = 0  # grid times with a value since the alarm
    mid: float = math.inf  # back above this value: a dip, not a drop


@dataclass
class SignalState:
    tracker: SignalTracker
    query: str  # the rendered PromQL; a different query means the state is not reusable
    last_at: float | None = None  # newest grid time fed to the tracker (unix seconds)
    last_seen: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    since_gap: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    held: list[Held] = field(default_factory=list)


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str) -> float:
    """A Prometheus duration such as 1m, 30s, 1h30m, in seconds."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a Prometheus duration like 1m or 30s")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def epoch(at: datetime) -> float:
    if at.tzinfo is None:
        raise ValueError(f"time {at.isoformat()} has no timezone; pass an aware UTC datetime")
    return at.timestamp()


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
