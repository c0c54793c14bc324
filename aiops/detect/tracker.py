"""Turn one catalog signal's successive query results into de-duplicated Anomaly objects.

This is the pure half of the detection pass: the caller (an activity) queries Prometheus every
interval and hands each result here as (labels, value) pairs; the tracker keeps one detector
column per series (series may appear and disappear), scores them all at once and emits an Anomaly
when a series starts alarming. A series stays "open" until it has been quiet for `clear_after`
steps, so one incident yields one Anomaly rather than one per scrape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from aiops.detect.catalog import Signal
from aiops.detect.novelty import NoveltyConfig, NoveltyDetector
from aiops.detect.presets import NOVELTY_CONFIG, NOVELTY_THRESHOLD
from aiops.domain.models import Anomaly, Direction

SeriesKey = tuple[tuple[str, str], ...]


@dataclass
class SignalTracker:
    signal: Signal
    step_seconds: float = 15.0
    period: int = 0  # seasonal period in steps (0: none)
    threshold: float = NOVELTY_THRESHOLD
    config: NoveltyConfig = NOVELTY_CONFIG
    evidence_steps: int = 20
    clear_after: int = 20
    window: str = "1m"
    detector: NoveltyDetector = field(init=False)
    index: dict[SeriesKey, int] = field(default_factory=dict)
    open_quiet: dict[int, int] = field(default_factory=dict)  # column -> quiet steps so far

    def __post_init__(self) -> None:
        self.detector = NoveltyDetector(0, self.config, period=0)

    def observe(
        self, at: datetime, points: Iterable[tuple[Mapping[str, str], float]]
    ) -> list[Anomaly]:
        """Score one evaluation: every series the query returned at time `at`.

        Series the query did not return this time count as gaps (no score, no state change).
        NaN and +-Inf values (division by zero in a ratio, a dead exporter) are gaps as well.
        """
        values: dict[int, float] = {}
        labels_of: dict[int, Mapping[str, str]] = {}
        fresh = 0
        for labels, value in points:
            key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
            col = self.index.get(key)
            if col is None:
                col = len(self.index)
                self.index[key] = col
                fresh += 1
            values[col] = float(value)
            labels_of[col] = labels
        self.detector.grow(fresh, self.period)
        n = self.detector.n_series
        row = np.full(n, np.nan)
        for col, v in values.items():
            row[col] = v
        level_before = self.detector.state.smooth.copy()
        scores = self.detector.step(row)
        return self._emit(at, row, scores, level_before, labels_of)

    def _emit(
        self,
        at: datetime,
        row: np.ndarray,
        scores: np.ndarray,
        level: np.ndarray,
        labels_of: Mapping[int, Mapping[str, str]],
    ) -> list[Anomaly]:
        out: list[Anomaly] = []
        alarming = scores >= self.threshold
        for col in list(self.open_quiet):
            if alarming[col]:
                self.open_quiet[col] = 0
            else:
                self.open_quiet[col] += 1
                if self.open_quiet[col] >= self.clear_after:
                    del self.open_quiet[col]
        query = self.signal.render(window=self.window)
        span = timedelta(seconds=self.step_seconds * self.evidence_steps)
        for col in np.flatnonzero(alarming).tolist():
            if col in self.open_quiet or col not in labels_of:
                continue
            value = float(row[col])
            base = float(level[col]) if np.isfinite(level[col]) else None
            direction = Direction.UP if base is None or value >= base else Direction.DOWN
            if self.signal.direction is not Direction.BOTH and direction is not (
                self.signal.direction
            ):
                continue  # the bad direction only: a falling error ratio is good news
            self.open_quiet[col] = 0
            out.append(
                Anomaly(
                    signal=self.signal.name,
                    series={str(k): str(v) for k, v in labels_of[col].items()},
                    query=query,
                    start=at,
                    score=float(scores[col]),
                    direction=direction,
                    value=value,
                    baseline=base,
                    evidence_window=(at - span, at),
                )
            )
        return out
