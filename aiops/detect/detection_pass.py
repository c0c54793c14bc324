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
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from aiops.detect.catalog import Signal
from aiops.detect.novelty import NoveltyConfig, NoveltyState
from aiops.detect.presets import (
    LIVE_NORMAL_SECONDS,
    LIVE_NOVELTY_CONFIG,
    LIVE_PERSIST_SECONDS,
    NOVELTY_THRESHOLD,
)
from aiops.detect.tracker import SeriesKey, SignalTracker
from aiops.domain.models import Anomaly, Direction

FORMAT_VERSION = 3  # 2: the detector remembers pre-alarm ranges; 3: SPOT statistics

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS_PER_QUERY = 10_000


class CheckpointError(Exception):
    """A checkpoint could not be read; callers start cold (the message says why)."""


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
class _Held:
    """A DOWN alarm waiting to see whether its series goes on (see the module docstring)."""

    col: int
    anomaly: Anomaly
    present: int = 0  # grid times with a value since the alarm
    mid: float = math.inf  # back above this value: a dip, not a drop


@dataclass
class _SignalState:
    tracker: SignalTracker
    query: str  # the rendered PromQL; a different query means the state is not reusable
    last_at: float | None = None  # newest grid time fed to the tracker (unix seconds)
    last_seen: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    since_gap: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    held: list[_Held] = field(default_factory=list)


class DetectionState:
    """Trackers for every catalog signal, carried from pass to pass."""

    def __init__(self, signals: Sequence[Signal], config: PassConfig | None = None) -> None:
        self.config = config or PassConfig()
        self.signals: dict[str, Signal] = {s.name: s for s in signals}
        self._states: dict[str, _SignalState] = {}
        self.window_steps = max(
            1, math.ceil(_duration(self.config.rate_window) / self.config.step_seconds - 1e-9)
        )

    # ---- the pass ----------------------------------------------------------------------

    def grid_time(self, now: datetime) -> datetime:
        """The newest evaluation time a pass at `now` scores."""
        step = self.config.step_seconds
        t = math.floor((_ts(now) - self.config.settle_seconds) / step) * step
        return _dt(t)

    def plan(self, now: datetime) -> list[QueryPlan]:
        """The queries this pass needs (signals already up to date are left out)."""
        c = self.config
        end = _ts(self.grid_time(now))
        max_back = min(c.prime_seconds, c.step_seconds * (MAX_POINTS_PER_QUERY - 1))
        earliest = end - math.floor(max_back / c.step_seconds) * c.step_seconds
        plans = []
        for name, signal in self.signals.items():
            st = self._states.get(name)
            promql = signal.render(window=c.rate_window)
            if st is not None and st.query != promql:
                st = None  # the signal was redefined: its old state describes another query
            if st is not None and st.last_at is not None and st.last_at >= end:
                continue
            last = None if st is None else st.last_at
            cold = last is None
            # After a failed or missed pass, catch up on every grid time since (within reach).
            start = earliest if last is None else max(earliest, last + c.step_seconds)
            plans.append(QueryPlan(name, promql, _dt(start), _dt(end), c.step_seconds, cold))
        return plans

    def apply(
        self,
        plans: Sequence[QueryPlan],
        fetched: Mapping[str, Sequence[SeriesLike] | BaseException | str],
    ) -> PassResult:
        """Feed each plan's fetched series to its tracker; a missing or failed fetch skips it."""
        anomalies: list[Anomaly] = []
        outcomes: list[SignalOutcome] = []
        history = 0
        evicted = 0
        planned = {p.signal for p in plans}
        newest = max((p.end for p in plans), default=None)
        for plan in plans:
            got = fetched.get(plan.signal)
            if got is None or isinstance(got, BaseException | str):
                error = "not fetched" if got is None else str(got)
                outcomes.append(SignalOutcome(plan.signal, "failed", error=error, cold=plan.cold))
                continue
            try:
                found, n_series = self._feed(plan, got)
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
            evicted += self._evict(plan.signal, _ts(plan.end))
            outcomes.append(
                SignalOutcome(plan.signal, "ok", series=n_series, steps=plan.steps, cold=plan.cold)
            )
        for name in self.signals:
            if name not in planned:
                outcomes.append(SignalOutcome(name, "up_to_date"))
        anomalies.sort(key=lambda a: (-a.score, a.signal, sorted(a.series.items())))
        at = (
            newest
            if newest is not None
            else _dt(max((s.last_at or 0.0 for s in self._states.values()), default=0.0))
        )
        return PassResult(at, anomalies, outcomes, history, evicted)

    def _feed(self, plan: QueryPlan, series: Sequence[SeriesLike]) -> tuple[list[Anomaly], int]:
        c = self.config
        st = self._states.get(plan.signal)
        if st is None or st.query != plan.promql or plan.cold:
            tracker = SignalTracker(
                self.signals[plan.signal],
                step_seconds=c.step_seconds,
                threshold=c.threshold,
                config=c.step_detector(),
                window=c.rate_window,
            )
            st = _SignalState(tracker, plan.promql)
            self._states[plan.signal] = st
        tracker = st.tracker
        start, steps = _ts(plan.start), plan.steps
        signal = self.signals[plan.signal]
        windowed = "$window" in signal.query
        # A window overlapping a gap reads low: that matters only where low is bad.
        settle = self.window_steps if windowed and signal.direction is not Direction.UP else 1

        # Columns once per block, not once per grid time: priming scores hundreds of times.
        keys = [_key(s.labels) for s in series]
        tracker.add_series(list(dict.fromkeys(k for k in keys if k not in tracker.index)))
        cols = np.fromiter((tracker.index[k] for k in keys), np.int64, len(keys))
        n = tracker.detector.n_series
        labels_of = _ColumnLabels(series, cols, n)
        if st.last_seen.size < n:
            fill = np.full(n - st.last_seen.size, _ts(plan.end))
            st.last_seen = np.concatenate([st.last_seen, fill])
            new = np.zeros(n - st.since_gap.size, np.int64)
            st.since_gap = np.concatenate([st.since_gap, new])

        # All points of all series at once (10,000 series: no per-series numpy calls).
        m = len(series)
        lens = np.fromiter((len(s.timestamps) for s in series), np.int64, m)
        vlens = np.fromiter((len(s.values) for s in series), np.int64, m)
        if not np.array_equal(lens, vlens):
            j = int(np.flatnonzero(lens != vlens)[0])
            raise ValueError(
                f"series {dict(series[j].labels)} has {lens[j]} timestamps but {vlens[j]} values"
            )
        total = int(lens.sum())
        ts = np.fromiter(chain.from_iterable(s.timestamps for s in series), np.float64, total)
        vs = np.fromiter(chain.from_iterable(s.values for s in series), np.float64, total)
        owner = np.repeat(np.arange(m), lens)
        idx = np.rint((ts - start) / c.step_seconds).astype(np.int64)
        ok = (idx >= 0) & (idx < steps)
        block = np.full((steps, m), np.nan)
        block[idx[ok], owner[ok]] = vs[ok]
        # Returned at all (even as NaN) means the series still exists.
        np.maximum.at(st.last_seen, cols[owner[ok]], start + idx[ok] * c.step_seconds)
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
            scores, normal = tracker.score(row)
            at = _dt(start + t * c.step_seconds)
            # The tracker's own emission rule (one anomaly per episode, bad direction only).
            for a in tracker._emit(at, row, scores, normal, labels_of):
                if windowed and a.direction is Direction.DOWN:
                    mid = (
                        a.value
                        if a.baseline is None or a.value is None
                        else ((a.value + a.baseline) / 2)
                    )
                    st.held.append(_Held(tracker.index[_key(a.series)], a, mid=mid or 0.0))
                else:
                    found.append(a)
        st.last_at = _ts(plan.end)
        return found, len(series)

    def _release(self, st: _SignalState, row: npt.NDArray[np.float64], hold: int) -> list[Anomaly]:
        out: list[Anomaly] = []
        keep: list[_Held] = []
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
        """The whole state as an .npz archive (numpy arrays + one JSON header, no pickle)."""
        arrays: dict[str, npt.NDArray[Any]] = {}
        header: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "config": self.config.fingerprint(),
            "signals": {},
        }
        for i, (name, st) in enumerate(self._states.items()):
            tr = st.tracker
            s = tr.detector.state
            header["signals"][name] = {
                "held": [
                    {
                        "col": h.col,
                        "present": h.present,
                        "mid": h.mid,
                        "anomaly": h.anomaly.model_dump(mode="json"),
                    }
                    for h in st.held
                ],
                "prefix": f"s{i}",
                "query": st.query,
                "last_at": st.last_at,
                "t": s.t,
                "n": tr.detector.n_series,
                "keys": _keys_in_order(tr.index),  # tuples: JSON arrays
                "open_quiet": [[c, q] for c, q in tr.open_quiet.items()],
            }
            for f in dataclasses.fields(NoveltyState):
                if f.name != "t":
                    arrays[f"s{i}.{f.name}"] = getattr(s, f.name)
            arrays[f"s{i}.last_seen"] = st.last_seen
            arrays[f"s{i}.since_gap"] = st.since_gap
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(
        cls, data: bytes, signals: Sequence[Signal], config: PassConfig | None = None
    ) -> DetectionState:
        """Restore a checkpoint. Signals whose query or settings changed start cold;
        an unreadable checkpoint raises CheckpointError (start cold: `DetectionState(...)`)."""
        state = cls(signals, config)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                header = json.loads(bytes(npz["header"]).decode())
                if header.get("version") != FORMAT_VERSION:
                    raise CheckpointError(
                        f"checkpoint format {header.get('version')!r} is not {FORMAT_VERSION}"
                    )
                if header["config"] != state.config.fingerprint():
                    return state  # other detector settings: the old state would mislead
                for name, meta in header["signals"].items():
                    signal = state.signals.get(name)
                    if signal is None:
                        continue
                    if meta["query"] != signal.render(window=state.config.rate_window):
                        continue
                    state._states[name] = _restore_signal(state, signal, meta, npz)
        except CheckpointError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"checkpoint is unreadable ({type(exc).__name__}: {exc})"
            ) from exc
        return state


def _restore_signal(
    state: DetectionState, signal: Signal, meta: dict[str, Any], npz: Any
) -> _SignalState:
    c = state.config
    p = meta["prefix"]
    tracker = SignalTracker(
        signal,
        step_seconds=c.step_seconds,
        threshold=c.threshold,
        config=c.step_detector(),
        window=c.rate_window,
    )
    fields = {
        f.name: np.array(npz[f"{p}.{f.name}"])
        for f in dataclasses.fields(NoveltyState)
        if f.name != "t"
    }
    n = int(meta["n"])
    if any(v.shape[-1 if k != "history" else 0] != n for k, v in fields.items()):
        raise CheckpointError(f"checkpoint of signal {signal.name!r} has inconsistent arrays")
    tracker.detector.state = NoveltyState(**fields, t=int(meta["t"]))
    tracker.detector.n_series = n
    tracker.detector.blame = np.zeros((fields["lo"].shape[0], n))
    tracker.index = {
        tuple((str(k), str(v)) for k, v in key): i for i, key in enumerate(meta["keys"])
    }
    tracker.open_quiet = {int(col): int(q) for col, q in meta["open_quiet"]}
    if len(tracker.index) != n:
        raise CheckpointError(
            f"checkpoint of signal {signal.name!r} has {n} columns but "
            f"{len(tracker.index)} series keys"
        )
    last_at = meta["last_at"]
    held = [
        _Held(
            int(h["col"]), Anomaly.model_validate(h["anomaly"]), int(h["present"]), float(h["mid"])
        )
        for h in meta["held"]
    ]
    return _SignalState(
        tracker,
        meta["query"],
        None if last_at is None else float(last_at),
        np.array(npz[f"{p}.last_seen"], np.float64),
        np.array(npz[f"{p}.since_gap"], np.int64),
        held,
    )


class _ColumnLabels(Mapping[int, Mapping[str, str]]):
    """The labels of this answer's series by detector column, looked up only for the few
    columns that alarm (a dict of 100,000 entries per pass would cost a quarter second)."""

    def __init__(self, series: Sequence[SeriesLike], cols: npt.NDArray[np.int64], n: int) -> None:
        self._series = series
        self._pos = np.full(n, -1, np.int64)
        self._pos[cols] = np.arange(len(cols))

    def __getitem__(self, col: int) -> Mapping[str, str]:
        pos = int(self._pos[col]) if 0 <= col < len(self._pos) else -1
        if pos < 0:
            raise KeyError(col)
        return self._series[pos].labels

    def __iter__(self) -> Iterator[int]:
        return iter(np.flatnonzero(self._pos >= 0).tolist())

    def __len__(self) -> int:
        return int(np.count_nonzero(self._pos >= 0))


def _select_columns(st: _SignalState, keep: npt.NDArray[np.int64]) -> None:
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
    tr.open_quiet = {new_of_old[c]: q for c, q in tr.open_quiet.items() if c in new_of_old}
    tr.detector.n_series = len(keep)
    tr.detector.blame = np.zeros((s.lo.shape[0], len(keep)))
    st.last_seen = st.last_seen[keep]
    st.since_gap = st.since_gap[keep]
    st.held = [
        dataclasses.replace(h, col=new_of_old[h.col]) for h in st.held if h.col in new_of_old
    ]


def _keys_in_order(index: Mapping[SeriesKey, int]) -> list[SeriesKey]:
    keys: list[SeriesKey] = [()] * len(index)
    for k, c in index.items():
        keys[c] = k
    return keys


def _key(labels: Mapping[str, str]) -> SeriesKey:
    return tuple(sorted(labels.items()))  # (label names and values are strings already)


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _duration(text: str) -> float:
    """A Prometheus duration such as 1m, 30s, 1h30m, in seconds."""
    import re

    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a Prometheus duration like 1m or 30s")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def _ts(at: datetime) -> float:
    if at.tzinfo is None:
        raise ValueError(f"time {at.isoformat()} has no timezone; pass an aware UTC datetime")
    return at.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
