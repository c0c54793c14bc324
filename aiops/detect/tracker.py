"""Turn one catalog signal's successive query results into de-duplicated Anomaly objects.

This is the pure half of the detection pass: the caller (an activity) queries Prometheus every
interval and hands each result here as (labels, value) pairs; the tracker keeps one detector
column per series (series may appear and disappear), scores them all at once and emits an Anomaly
when a series starts alarming. A series stays "open" until it has been quiet for `clear_after`
steps, so one incident yields one Anomaly rather than one per scrape.

Three rules keep the alarms to the ones worth an incident:
- only the signal's bad direction is scored (a falling error ratio is good news);
- a series alarms only once it is the signal's minimum change (`min_delta`, `min_ratio`) away
  from its normal level (the detector's slow centre): a series flat for an hour otherwise
  alarms on any new high, however small;
- a new pod's series starts from the normal range of its workload's other pods (running, or
  replaced earlier and not yet evicted), so a rollout or a crash-looping revision is watched
  from its first sample rather than after the detector's warm-up. That is decided at the
  series' first sample, not when its column is made: a priming answer makes every column
  before it scores its first grid time, and a pod that began within the primed hour has warm
  siblings only by the time its own samples start.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from aiops.detect.catalog import Signal
from aiops.detect.novelty import NoveltyConfig, NoveltyDetector
from aiops.detect.presets import LIVE_NOVELTY_CONFIG, NOVELTY_THRESHOLD
from aiops.domain.models import Anomaly, Direction

SeriesKey = tuple[tuple[str, str], ...]

# Pod names as controllers make them: <deployment>-<replicaset hash>-<suffix>, <set>-<ordinal>.
_DEPLOYMENT_POD = re.compile(r"^(.+)-[a-z0-9]{5,10}-[a-z0-9]{5}$")
_ORDINAL_POD = re.compile(r"^(.+)-\d+$")
_SIGN = {Direction.UP: 1, Direction.DOWN: -1, Direction.BOTH: 0}
#: The features a persistent departure (Signal.persists) is judged on: the slow level only
#: (aiops.detect.detection_pass.PassConfig.persist_seconds). Load comes in bursts (a crawler,
#: a retry wave) and pods are replaced every day; a surge or an outage that lasts moves it.
SLOW_LEVEL_ONLY = (0.0, 0.0, 0.0, 1.0, 0.0)


def workload_of(pod: str) -> str | None:
    """The workload a pod belongs to, from its name (None when the name has no such shape)."""
    m = _DEPLOYMENT_POD.match(pod) or _ORDINAL_POD.match(pod)
    return m.group(1) if m else None


def _sibling_key(key: SeriesKey) -> SeriesKey | None:
    """Series of the same workload share this key: the pod label replaced by the workload."""
    labels = dict(key)
    pod = labels.get("pod")
    workload = workload_of(pod) if pod else None
    if workload is None:
        return None
    labels["pod"] = workload + "-*"
    return tuple(sorted(labels.items()))


@dataclass
class SignalTracker:
    signal: Signal
    step_seconds: float = 15.0
    period: int = 0  # seasonal period in steps (0: none)
    threshold: float = NOVELTY_THRESHOLD
    config: NoveltyConfig = LIVE_NOVELTY_CONFIG
    evidence_steps: int = 20
    clear_after: int = 20
    window: str = "1m"
    detector: NoveltyDetector = field(init=False)
    index: dict[SeriesKey, int] = field(default_factory=dict)
    open_quiet: dict[int, int] = field(default_factory=dict)  # column -> quiet steps so far
    epoch: int = 0  # changes whenever the columns do (added, or renumbered by an eviction)
    # Columns with no sample yet (to seed at their first), valid for one column epoch.
    _fresh: tuple[int, npt.NDArray[np.int64]] | None = field(default=None, init=False, repr=False)
    _groups: tuple[int, npt.NDArray[np.int64]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # Only the bad direction counts: a falling error ratio is good news, and scoring it
        # would start the refractory period that mutes the series when errors come back.
        config = dataclasses.replace(self.config, direction=_SIGN[self.signal.direction])
        if self._persists(Direction.UP):
            config = dataclasses.replace(config, up_weights=SLOW_LEVEL_ONLY)
        if self._persists(Direction.DOWN):
            config = dataclasses.replace(config, down_weights=SLOW_LEVEL_ONLY)
        self.detector = NoveltyDetector(0, config, period=0)

    def _persists(self, direction: Direction) -> bool:
        return self.signal.persists in (direction, Direction.BOTH)

    def add_series(self, keys: Sequence[SeriesKey]) -> None:
        """Columns for series never seen before; each is seeded at its first sample
        (`seed_first_samples`)."""
        if not keys:
            return
        first = self.detector.n_series
        self.epoch += 1
        for i, key in enumerate(keys):
            self.index[key] = first + i
        self.detector.grow(len(keys), self.period)

    def seed_first_samples(self, row: npt.NDArray[np.float64]) -> None:
        """Series whose first sample this row holds, of a workload with other warm pods
        (running now, or replaced earlier and not yet evicted), start from their normal range,
        so a new pod (a rollout, a crash-looping revision, a pod younger than the primed
        history) is watched from its first sample instead of after the detector's warm-up."""
        if self._fresh is None or self._fresh[0] != self.epoch:
            self._fresh = (self.epoch, np.flatnonzero(self.detector.state.count == 0))
        fresh = self._fresh[1]
        if not fresh.size:
            return
        seen = np.isfinite(row[fresh])
        if not seen.any():
            return
        self._fresh = (self.epoch, fresh[~seen])
        if self.signal.seed_new_series:
            self._seed(fresh[seen])

    def _sibling_groups(self) -> npt.NDArray[np.int64]:
        """Per column, an id shared by the pods of one workload (-1: not a workload's pod)."""
        if self._groups is not None and self._groups[0] == self.epoch:
            return self._groups[1]
        ids: dict[SeriesKey, int] = {}
        groups = np.full(self.detector.n_series, -1, np.int64)
        for key, col in self.index.items():
            if (k := _sibling_key(key)) is not None:
                groups[col] = ids.setdefault(k, len(ids))
        self._groups = (self.epoch, groups)
        return groups

    def _seed(self, cols: npt.NDArray[np.int64]) -> None:
        s = self.detector.state
        warmup = self.detector.config.warmup
        warm = s.count >= warmup
        if not warm.any():
            return
        groups = self._sibling_groups()
        wanted = np.unique(groups[cols])
        wanted = wanted[wanted >= 0]
        # The warm pods of these workloads only: a rollout of many pods stays cheap.
        warm_cols = np.flatnonzero(warm & np.isin(groups, wanted))
        for g in np.unique(groups[warm_cols]).tolist():
            sib = warm_cols[groups[warm_cols] == g]
            new = cols[groups[cols] == g]
            with warnings.catch_warnings():  # features no sibling has yet stay unknown (NaN)
                warnings.simplefilter("ignore", RuntimeWarning)
                s.lo[:, new] = np.nanmin(s.lo[:, sib], axis=1)[:, None]
                s.hi[:, new] = np.nanmax(s.hi[:, sib], axis=1)[:, None]
                s.center[:, new] = np.nanmedian(s.center[:, sib], axis=1)[:, None]
                for name in ("smooth", "slow", "vol"):
                    getattr(s, name)[new] = np.nanmedian(getattr(s, name)[sib])
            s.feature_count[:, new] = s.feature_count[:, sib].max(axis=1)[:, None]
            s.count[new] = warmup

    def practical(
        self, row: npt.NDArray[np.float64], explained: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.bool_]:
        """Series whose value is far enough from their normal level to matter (the signal's
        min_delta and min_ratio); NaN where there is no normal level yet counts as far.
        Where `explained` (per series) is True, none: extra load explains the rise for as long
        as it lasts, however long (a surge of minutes made every pod's CPU an anomaly once its
        two-minute level showed it, and a follow-up incident drained the node they ran on); a
        rise that outlasts its load is judged once the load is back (its fast features did not
        learn the rise meanwhile, aiops.detect.novelty's `persist`)."""
        sig = self.signal
        normal = self.detector.state.center[0]
        known = np.isfinite(normal)
        # A persistent departure is as large as its slow level has come (that level is
        # updated with this row in the detector's step; the previous one is close enough).
        slow = self.detector.state.slow
        high = np.fmin(row, slow) if self._persists(Direction.UP) else row
        low = np.fmax(row, slow) if self._persists(Direction.DOWN) else row
        with np.errstate(invalid="ignore"):
            up = (high - normal >= sig.min_delta) & (high >= normal * sig.min_ratio)
            down = (normal - low >= sig.min_delta) & (low * sig.min_ratio <= normal)
        if sig.direction is Direction.UP:
            far = up
        elif sig.direction is Direction.DOWN:
            far = down
        else:
            far = up | down
        far = far | ~known
        if explained is not None:
            far &= ~explained
        return np.asarray(far, dtype=bool)

    def score(
        self, row: npt.NDArray[np.float64], explained: npt.NDArray[np.bool_] | None = None
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Score one row; returns the scores and the normal levels before this row.
        `explained` (per series): the departure has a known cause, extra load
        (aiops.detect.load), so it counts only once it outlasts that load."""
        self.seed_first_samples(row)
        normal = self.detector.state.center[0].copy()
        allowed = self.practical(row, explained)
        return self.detector.step(row, allowed=allowed, persist=explained), normal

    def observe(
        self, at: datetime, points: Iterable[tuple[Mapping[str, str], float]]
    ) -> list[Anomaly]:
        """Score one evaluation: every series the query returned at time `at`.

        Series the query did not return this time count as gaps (no score, no state change).
        NaN and +-Inf values (division by zero in a ratio, a dead exporter) are gaps as well.
        """
        pts = [
            (tuple(sorted((str(k), str(v)) for k, v in labels.items())), labels, value)
            for labels, value in points
        ]
        self.add_series(list(dict.fromkeys(k for k, _, _ in pts if k not in self.index)))
        row = np.full(self.detector.n_series, np.nan)
        labels_of: dict[int, Mapping[str, str]] = {}
        for key, labels, value in pts:
            col = self.index[key]
            row[col] = float(value)
            labels_of[col] = labels
        scores, normal = self.score(row)
        return self._emit(at, row, scores, normal, labels_of)

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
            direction = self.signal.direction
            if direction is Direction.BOTH:
                direction = Direction.UP if base is None or value >= base else Direction.DOWN
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
