"""The live detection pass: pure orchestration of the signal trackers over fetched query results.

One pass is two calls around the network I/O the caller does:

    plans = state.plan(now)                # which PromQL to run, over which grid times
    result = state.apply(now, fetched)     # fetched[signal] = its series, or the error text

Grid: evaluation times are multiples of `step_seconds` since the epoch, so two passes never
score the same instant twice and a pass that runs again within the same step does nothing. A
signal's first pass (cold start) asks for `prime_seconds` of history as one range query, so the
detectors are warm from the first pass when Prometheus holds history. A failed query leaves that
signal's tracker untouched: the next pass asks for the missed grid times too (up to the prime
window), so an outage of Prometheus loses no samples and raises nothing by itself.

State (`DetectionState`) is plain numpy arrays plus label keys and serialises to bytes with
`to_bytes` / `from_bytes` (an .npz archive, no pickle), so a long-running process or a Temporal
activity can carry it between passes. Series that have not been seen for `evict_after_seconds`
are dropped, so pod churn does not grow the state without bound.

Edges of gaps: rate() over a window that is only partly covered by samples extrapolates less
and reads low, both when a series stops (the window runs off the end of its data) and when it
comes back. Signals where only up is bad (errors, latency, restarts) ignore that: reading low
cannot raise their alarm, and a new pod must be watched from its first samples. For the other
signals whose query has a $window (settle = window / step, rounded up):
- after a series had no value (a gap, NaN, a restart of Prometheus), its next `settle - 1`
  grid times are not scored, and in a range answer neither are the `settle - 1` before a gap;
- a DOWN alarm is held for `2 * settle` grid times (decay plus ramp of a short raw gap) and
  reported only if the series kept a value throughout and stayed below the midpoint between the
  alarm value and its baseline. A short dip or a series that stopped is not a traffic drop.
UP alarms are never held; gauge signals (no $window) need none of this.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from aiops.detect import pass_checkpoint
from aiops.detect.catalog import Signal
from aiops.detect.load import LoadContext, follows_load, is_load
from aiops.detect.novelty import NoveltyState
from aiops.detect.pass_answers import AnswerReader, Columns, flat_points
from aiops.detect.pass_checkpoint import CheckpointError
from aiops.detect.pass_types import (
    Held,
    PassConfig,
    PassResult,
    QueryPlan,
    SeriesLike,
    SignalOutcome,
    SignalState,
    duration_seconds,
    epoch,
    utc,
)
from aiops.detect.tracker import SeriesKey, SignalTracker
from aiops.domain.models import Anomaly, Direction

__all__ = [
    "CheckpointError",
    "DetectionState",
    "PassConfig",
    "PassResult",
    "QueryPlan",
    "SeriesLike",
    "SignalOutcome",
]

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS_PER_QUERY = 10_000


class DetectionState:
    """Trackers for every catalog signal, carried from pass to pass."""

    def __init__(self, signals: Sequence[Signal], config: PassConfig | None = None) -> None:
        self.config = config or PassConfig()
        self.signals: dict[str, Signal] = {s.name: s for s in signals}
        self._states: dict[str, SignalState] = {}
        self.load = LoadContext(duration_seconds(self.config.rate_window), self.config.step_seconds)
        self._reader = AnswerReader()  # how last pass's shared answers split (pass_answers.py)
        # By signal: the last answer's labels and their columns, valid for that tracker and
        # column epoch (`_columns_of`).
        self._columns: dict[
            str, tuple[SignalTracker, int, list[Mapping[str, str]], npt.NDArray[np.int64]]
        ] = {}
        self.window_steps = max(
            1,
            math.ceil(duration_seconds(self.config.rate_window) / self.config.step_seconds - 1e-9),
        )

    # ---- the pass ----------------------------------------------------------------------

    def grid_time(self, now: datetime) -> datetime:
        """The newest evaluation time a pass at `now` scores."""
        step = self.config.step_seconds
        t = math.floor((epoch(now) - self.config.settle_seconds) / step) * step
        return utc(t)

    def plan(self, now: datetime) -> list[QueryPlan]:
        """The queries this pass needs (signals already up to date are left out)."""
        c = self.config
        end = epoch(self.grid_time(now))
        max_back = min(c.prime_seconds, c.step_seconds * (MAX_POINTS_PER_QUERY - 1))
        earliest = end - math.floor(max_back / c.step_seconds) * c.step_seconds
        plans = []
        for name, signal in self.signals.items():
            st = self._states.get(name)
            form = signal.pass_query(c.rate_window)
            if st is not None and st.query != form.key:
                st = None  # the signal was redefined: its old state describes another query
            if st is not None and st.last_at is not None and st.last_at >= end:
                continue
            last = None if st is None else st.last_at
            cold = last is None
            # After a failed or missed pass, catch up on every grid time since (within reach).
            start = earliest if last is None else max(earliest, last + c.step_seconds)
            plans.append(
                QueryPlan(name, form.promql, utc(start), utc(end), c.step_seconds, cold, form)
            )
        return plans

    def apply(
        self,
        plans: Sequence[QueryPlan],
        fetched: Mapping[str, Sequence[SeriesLike] | BaseException | str],
        *,
        consume: bool = False,
    ) -> PassResult:
        """Feed each plan's fetched series to its tracker; a missing or failed fetch skips it.
        `consume` (a dict the caller holds nothing else of): each answer is dropped from it once
        fed, so a cold start's answers are freed one by one instead of all at the end."""
        anomalies: list[Anomaly] = []
        outcomes: list[SignalOutcome] = []
        history = 0
        evicted = 0
        planned = {p.signal for p in plans}
        newest = max((p.end for p in plans), default=None)
        # The load first: it explains the rises of what follows it (aiops.detect.load).
        for plan in sorted(plans, key=lambda p: not is_load(self.signals[p.signal])):
            got = fetched.get(plan.signal)
            if got is None or isinstance(got, BaseException | str):
                error = "not fetched" if got is None else str(got)
                outcomes.append(SignalOutcome(plan.signal, "failed", error=error, cold=plan.cold))
                continue
            try:
                series = self._reader.read(plan, got)
                if consume and isinstance(fetched, dict):
                    del fetched[plan.signal], got
                found, n_series = self._feed(plan, series)
                del series
            except Exception as exc:  # one signal's odd answer must not stop the others
                self._states.pop(plan.signal, None)  # half-fed state: start this one cold
                outcomes.append(
                    SignalOutcome(
                        plan.signal,
                        "failed",
                        error=f"could not score the answer "
                        f"({type(exc).__name__}: {exc}); the signal restarts cold",
                        cold=plan.cold,
                    )
                )
                continue
            cutoff = plan.end - timedelta(seconds=self.config.report_window_seconds)
            for a in found:
                if a.start >= cutoff:
                    anomalies.append(a)
                else:
                    history += 1
            evicted += self._evict(plan.signal, epoch(plan.end))
            outcomes.append(
                SignalOutcome(plan.signal, "ok", series=n_series, steps=plan.steps, cold=plan.cold)
            )
        self.load.clear()
        order = {p.signal: i for i, p in enumerate(plans)}
        outcomes.sort(key=lambda o: order[o.signal])  # as planned, whatever was fed first
        for name in self.signals:
            if name not in planned:
                outcomes.append(SignalOutcome(name, "up_to_date"))
        anomalies.sort(key=lambda a: (-a.score, a.signal, sorted(a.series.items())))
        at = (
            newest
            if newest is not None
            else utc(max((s.last_at or 0.0 for s in self._states.values()), default=0.0))
        )
        return PassResult(at, anomalies, outcomes, history, evicted)

    def _feed(self, plan: QueryPlan, series: Sequence[SeriesLike]) -> tuple[list[Anomaly], int]:
        c = self.config
        st = self._states.get(plan.signal)
        if st is None or st.query != plan.key or plan.cold:
            tracker = SignalTracker(
                self.signals[plan.signal],
                step_seconds=c.step_seconds,
                threshold=c.threshold,
                config=c.step_detector(),
                window=c.rate_window,
            )
            st = SignalState(tracker, plan.key)
            self._states[plan.signal] = st
        tracker = st.tracker
        start, steps = epoch(plan.start), plan.steps
        signal = self.signals[plan.signal]
        windowed = "$window" in signal.query
        load, follower = is_load(signal), follows_load(signal)
        # A window overlapping a gap reads low: that matters only where low is bad.
        settle = self.window_steps if windowed and signal.direction is not Direction.UP else 1

        # Columns once per block, not once per grid time: priming scores hundreds of times.
        if isinstance(series, Columns):
            names: list[Mapping[str, str]] = list(series.labels)
            lens, ts, vs = series.flat()
        else:
            names = [s.labels for s in series]
            lens, ts, vs = flat_points(series)
        cols = self._columns_of(plan.signal, tracker, names)
        n = tracker.detector.n_series
        labels_of = _ColumnLabels(names, cols, n)
        if st.last_seen.size < n:
            fill = np.full(n - st.last_seen.size, epoch(plan.end))
            st.last_seen = np.concatenate([st.last_seen, fill])
            new = np.zeros(n - st.since_gap.size, np.int64)
            st.since_gap = np.concatenate([st.since_gap, new])

        # All points of all series at once (`flat_points`, or the split's own flat arrays).
        m = len(series)
        owner = np.repeat(np.arange(m), lens)
        idx = np.rint((ts - start) / c.step_seconds).astype(np.int64)
        del ts  # a cold start's block is the pass's largest: hold one copy
        ok = (idx >= 0) & (idx < steps)
        if not ok.all():  # points outside the plan's grid (a shared answer's longer range)
            idx, owner, vs = idx[ok], owner[ok], vs[ok]
        block = np.full((steps, m), np.nan)
        block[idx, owner] = vs
        del vs
        # Returned at all (even as NaN) means the series still exists.
        np.maximum.at(st.last_seen, cols[owner], start + idx * c.step_seconds)
        del idx, owner
        # NaN, +-Inf (a ratio over zero traffic, a dead exporter) are gaps: never scored.
        finite = np.isfinite(block)
        block[~finite] = np.nan
        # Within a block the future is known: the values just before a gap were computed over
        # windows running off the end of the data. Never learn them as normal.
        for d in range(1, min(settle, steps)):
            block[:-d][~finite[d:]] = np.nan

        found: list[Anomaly] = []
        for t in range(steps):
            row = np.full(n, np.nan)
            row[cols] = block[t]
            present = np.isfinite(row)
            st.since_gap = np.where(present, st.since_gap + 1, 0)
            row[st.since_gap < settle] = np.nan  # window still overlaps the gap
            found += self._release(st, row, 2 * settle)
            grid = round(start + t * c.step_seconds, 3)
            explained = self.load.explained(grid, tracker) if follower else None
            scores, normal = tracker.score(row, explained)
            if load:
                self.load.record(grid, tracker, row, normal)
            at = utc(start + t * c.step_seconds)
            # The tracker's own emission rule (one anomaly per episode, bad direction only).
            for a in tracker._emit(at, row, scores, normal, labels_of):
                if windowed and a.direction is Direction.DOWN:
                    mid = (
                        a.value
                        if a.baseline is None or a.value is None
                        else ((a.value + a.baseline) / 2)
                    )
                    st.held.append(Held(tracker.index[_key(a.series)], a, mid=mid or 0.0))
                else:
                    found.append(a)
        st.last_at = epoch(plan.end)
        return found, len(series)

    def _columns_of(
        self, name: str, tracker: SignalTracker, labels: list[Mapping[str, str]]
    ) -> npt.NDArray[np.int64]:
        """The detector column of each series of an answer (new series get one). Prometheus
        answers a query in the same order pass after pass, so when the label sets are those of
        the signal's last answer (one comparison, in C) so are the columns: building and
        looking up 100,000 keys costs a steady pass half a second on a busy machine."""
        last = self._columns.get(name)
        fresh = last is not None and last[0] is tracker and last[1] == tracker.epoch
        if last is not None and fresh and last[2] == labels:
            return last[3]
        keys = [_key(lab) for lab in labels]
        tracker.add_series(list(dict.fromkeys(k for k in keys if k not in tracker.index)))
        cols = np.fromiter((tracker.index[k] for k in keys), np.int64, len(keys))
        self._columns[name] = (tracker, tracker.epoch, labels, cols)
        return cols

    def _release(self, st: SignalState, row: npt.NDArray[np.float64], hold: int) -> list[Anomaly]:
        out: list[Anomaly] = []
        keep: list[Held] = []
        for h in st.held:
            v = row[h.col]
            if not np.isfinite(v) or v > h.mid:
                # Stopped, or back up: the rate window ran dry, traffic did not fall. Forget
                # the episode, so the series is not muted (refractory) for a false alarm.
                st.tracker.detector.state.quiet[h.col] = 0
                st.tracker.open_quiet.pop(h.col, None)
                continue
            h.present += 1
            if h.present >= hold:
                out.append(h.anomaly)
            else:
                keep.append(h)
        st.held = keep
        return out

    def _evict(self, name: str, now: float) -> int:
        st = self._states[name]
        limit = now - self.config.evict_after_seconds
        stale = st.last_seen < limit
        if not stale.any():
            return 0
        keep = np.flatnonzero(~stale)
        _select_columns(st, keep)
        return int(stale.sum())

    # ---- checkpoints -------------------------------------------------------------------

    @property
    def n_series(self) -> int:
        return sum(st.tracker.detector.n_series for st in self._states.values())

    def to_bytes(self) -> bytes:
        """The whole state as an .npz archive (aiops.detect.pass_checkpoint)."""
        return pass_checkpoint.to_bytes(self.config, self._states)

    @classmethod
    def from_bytes(
        cls, data: bytes, signals: Sequence[Signal], config: PassConfig | None = None
    ) -> DetectionState:
        """Restore a checkpoint. Signals whose query or settings changed start cold;
        an unreadable checkpoint raises CheckpointError (start cold: `DetectionState(...)`)."""
        state = cls(signals, config)
        state._states = pass_checkpoint.restore(data, state.signals, state.config)
        return state


class _ColumnLabels(Mapping[int, Mapping[str, str]]):
    """The labels of this answer's series by detector column, looked up only for the few
    columns that alarm (a dict of 100,000 entries per pass would cost a quarter second)."""

    def __init__(
        self, labels: Sequence[Mapping[str, str]], cols: npt.NDArray[np.int64], n: int
    ) -> None:
        self._labels = labels
        self._pos = np.full(n, -1, np.int64)
        self._pos[cols] = np.arange(len(cols))

    def __getitem__(self, col: int) -> Mapping[str, str]:
        pos = int(self._pos[col]) if 0 <= col < len(self._pos) else -1
        if pos < 0:
            raise KeyError(col)
        return self._labels[pos]

    def __iter__(self) -> Iterator[int]:
        return iter(np.flatnonzero(self._pos >= 0).tolist())

    def __len__(self) -> int:
        return int(np.count_nonzero(self._pos >= 0))


def _select_columns(st: SignalState, keep: npt.NDArray[np.int64]) -> None:
    """Keep only the given detector columns (in order), renumbering the tracker's maps."""
    tr = st.tracker
    s = tr.detector.state
    for f in dataclasses.fields(NoveltyState):
        if f.name == "t":
            continue
        arr = getattr(s, f.name)
        setattr(s, f.name, arr[keep] if f.name == "history" else arr[..., keep])
    new_of_old = {int(old): new for new, old in enumerate(keep.tolist())}
    tr.index = {k: new_of_old[c] for k, c in tr.index.items() if c in new_of_old}
    tr.epoch += 1
    tr.open_quiet = {new_of_old[c]: q for c, q in tr.open_quiet.items() if c in new_of_old}
    tr.detector.n_series = len(keep)
    tr.detector.blame = np.zeros((s.lo.shape[0], len(keep)))
    st.last_seen = st.last_seen[keep]
    st.since_gap = st.since_gap[keep]
    st.held = [
        dataclasses.replace(h, col=new_of_old[h.col]) for h in st.held if h.col in new_of_old
    ]


def _key(labels: Mapping[str, str]) -> SeriesKey:
    return tuple(sorted(labels.items()))  # (label names and values are strings already)
