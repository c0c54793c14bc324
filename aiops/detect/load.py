"""What explains a rise: the load on a workload at that moment.

A burst of requests makes the workload's latency and CPU rise for as long as it lasts, with no
fault anywhere: that is traffic. So while a workload's load (a signal with `load: measures` in
the vocabulary, aiops/profiles/builtin/signals.yaml: the request rate) is well above its normal
level, rises of the signals that follow load (`load: follows`: latency, saturation, its nodes)
are no anomaly, however long the load lasts, and their fast features do not learn them
(aiops.detect.tracker, aiops.detect.novelty's `persist`): a rise counts once it outlasts the
load that explains it. A lasting surge is news through the load signal itself (the request
rate, `persists`), not through every pod and node that works harder for it. A rise with no
extra load behind it (a CPU hog, a slow dependency) is judged at once.

A burst shorter than the rate window hardly moves the windowed request rate (15 s at 1.7x lift
a one-minute rate by 17 %), yet the latency over that window holds the burst's slow requests
for the whole minute (a p99 is the tail, not the average). So the load also counts as extra
while the window still holds a burst: a rise of the windowed rate over BURST_S seconds, scaled by
window / BURST_S, estimates the burst's own height (the windowed rate climbs at height / window
per second while a burst lasts); where that height is LOAD_EXPLAINS times normal and the rise
stands BURST_Z noise units above the rate's own bin-to-bin moves, the workload is loaded until
the window has let the burst go.

Which load explains which series: a workload's own load explains its series (its latency, the
CPU of its pods, `<workload>-<hash>-<id>`, its deployment); the load of the whole cluster
explains the series of nodes and other cluster-scoped signals (no namespace label).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from aiops.detect.catalog import Signal
from aiops.detect.tracker import SeriesKey, SignalTracker, workload_of

#: A load this many times its normal level explains a rise of what follows load. The everyday
#: bursts of traffic are 2-3x; the jitter of steady traffic is a few percent.
LOAD_EXPLAINS = 1.25
#: The shortest burst of load the estimate sees at full height: everyday bursts (a push, a retry
#: wave, a crawler) last 10 s or more. Never shorter than the pass's step.
BURST_S = 10.0
#: A rise of the windowed rate is a burst only this many of its usual moves up (the detector's
#: own bin-to-bin volatility; a mean absolute move is 0.8 of a standard deviation), so the
#: jitter of a quiet, low-rate workload never passes for load.
BURST_Z = 3.0
CLUSTER = ("", "")  # the key of cluster-scoped series (nodes)

LoadKey = tuple[str, str]  # (namespace, workload)


def is_load(signal: Signal) -> bool:
    return signal.load == "measures"


def follows_load(signal: Signal) -> bool:
    return signal.load == "follows"


def load_key(signal: Signal, key: SeriesKey) -> LoadKey | None:
    """The workload (or the cluster) whose load explains this series; None: nothing does."""
    labels = dict(key)
    if signal.namespace_label is None or signal.entity in ("node", "cluster"):
        return CLUSTER
    namespace = labels.get(signal.namespace_label, "")
    entity = labels.get(signal.entity_label)
    if entity is None:
        return None
    if signal.entity == "pod":
        workload = workload_of(entity)
        return None if workload is None else (namespace, workload)
    return (namespace, entity)


@dataclass
class _Bursts:
    """One load signal's recent windowed rates (per column, the cluster's total last) and when
    each last rose like a burst. Kept in memory only: after a restart the bursts of the last
    window are not known, and a rise is judged against the windowed rate alone meanwhile."""

    epoch: int
    times: deque[float] = field(default_factory=deque)
    rows: deque[npt.NDArray[np.float64]] = field(default_factory=deque)
    last_burst: npt.NDArray[np.float64] | None = None


class LoadContext:
    """Per grid time of the pass being applied, which workloads carry extra load."""

    def __init__(self, window_s: float = 60.0, step_s: float = 15.0) -> None:
        self._ids: dict[LoadKey, int] = {CLUSTER: 0}
        self._elevated: dict[float, npt.NDArray[np.bool_]] = {}
        self._columns: dict[str, tuple[int, npt.NDArray[np.int64]]] = {}
        self.window_s = window_s
        self.step_s = step_s
        self._lag_steps = max(1, round(max(BURST_S, step_s) / step_s))
        self._bursts: dict[str, _Bursts] = {}

    def clear(self) -> None:
        """Forget the grid times recorded (call once a pass has been applied)."""
        self._elevated.clear()

    def record(
        self,
        at: float,
        tracker: SignalTracker,
        row: npt.NDArray[np.float64],
        normal: npt.NDArray[np.float64],
    ) -> None:
        """A load signal's values and normal levels at one grid time."""
        ids = self._column_ids(tracker)
        with np.errstate(divide="ignore", invalid="ignore"):
            elevated = (row >= LOAD_EXPLAINS * normal) & (normal > 0)
        known = np.isfinite(row) & np.isfinite(normal)
        flags = np.zeros(len(self._ids), bool)
        hit = ids[(ids > 0) & elevated & known]
        flags[hit] = True
        total, usual = row[known].sum(), normal[known].sum()
        flags[0] = bool(usual > 0 and total >= LOAD_EXPLAINS * usual)
        burst = self._burst(
            at,
            tracker,
            np.append(np.where(known, row, np.nan), total),
            np.append(np.where(known, normal, np.nan), usual),
            known,
        )
        flags[ids[(ids > 0) & burst[:-1]]] = True
        flags[0] |= bool(burst[-1])
        earlier = self._elevated.get(at)
        if earlier is not None:  # several load signals (a user's own): any one's extra load
            flags[: earlier.size] |= earlier
        self._elevated[at] = flags

    def _burst(
        self,
        at: float,
        tracker: SignalTracker,
        values: npt.NDArray[np.float64],
        usual: npt.NDArray[np.float64],
        known: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.bool_]:
        """Per column and for the cluster's total (last, in `values` and `usual` alike):
        whether the rate window still holds a burst of LOAD_EXPLAINS times the normal load
        (the module's docstring)."""
        name = tracker.signal.name
        mem = self._bursts.get(name)
        if mem is None or mem.epoch != tracker.epoch:  # columns renumbered: start afresh
            mem = self._bursts[name] = _Bursts(tracker.epoch)
        vol = tracker.detector.state.vol
        spread = np.append(vol, math.sqrt(float(np.nansum(np.where(known, vol, 0.0) ** 2))))
        if mem.last_burst is None:
            mem.last_burst = np.full(values.size, -np.inf)
        oldest = at - self._lag_steps * self.step_s
        while mem.times and mem.times[0] < oldest - 1e-6:
            mem.times.popleft()
            mem.rows.popleft()
        # Over every span up to BURST_S: the longest sees a burst's full height with the least
        # noise, the shortest sees it within a step of its start (the p99 rises at once).
        for then, before in zip(mem.times, mem.rows, strict=True):
            span = at - then
            rise = values - before
            height = rise * (self.window_s / span)
            # a mean absolute move is sqrt(2/pi) of a standard deviation; moves add up over
            # the span's steps like independent ones
            sd = spread / math.sqrt(2 / math.pi) * math.sqrt(span / self.step_s)
            with np.errstate(invalid="ignore"):
                rose = (
                    (usual > 0) & (height >= (LOAD_EXPLAINS - 1) * usual) & (rise >= BURST_Z * sd)
                )
            mem.last_burst[rose] = at
        mem.times.append(at)
        mem.rows.append(values)
        return np.asarray(at - mem.last_burst <= self.window_s, dtype=bool)

    def explained(self, at: float, tracker: SignalTracker) -> npt.NDArray[np.bool_] | None:
        """Per column of a load-following tracker, whether extra load explains a rise now
        (None when the load was not recorded for this grid time: nothing is explained)."""
        flags = self._elevated.get(at)
        if flags is None:
            return None
        ids = self._column_ids(tracker)
        inside = (ids >= 0) & (ids < len(flags))
        return np.where(inside, flags[np.where(inside, ids, 0)], False)

    def _column_ids(self, tracker: SignalTracker) -> npt.NDArray[np.int64]:
        """Load key id per detector column (-1: no load explains it), cached per tracker."""
        name = tracker.signal.name
        cached = self._columns.get(name)
        if cached is not None and cached[0] == tracker.epoch:
            return cached[1]
        ids = np.full(tracker.detector.n_series, -1, np.int64)
        for key, col in tracker.index.items():
            lk = load_key(tracker.signal, key)
            if lk is not None:
                ids[col] = self._ids.setdefault(lk, len(self._ids))
        self._columns[name] = (tracker.epoch, ids)
        return ids
