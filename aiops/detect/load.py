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

Which load explains which series: a workload's own load explains its series (its latency, the
CPU of its pods, `<workload>-<hash>-<id>`, its deployment); the load of the whole cluster
explains the series of nodes and other cluster-scoped signals (no namespace label).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aiops.detect.catalog import Signal
from aiops.detect.tracker import SeriesKey, SignalTracker, workload_of

#: A load this many times its normal level explains a rise of what follows load. The everyday
#: bursts of traffic are 2-3x; the jitter of steady traffic is a few percent.
LOAD_EXPLAINS = 1.25
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


class LoadContext:
    """Per grid time of the pass being applied, which workloads carry extra load."""

    def __init__(self) -> None:
        self._ids: dict[LoadKey, int] = {CLUSTER: 0}
        self._elevated: dict[float, npt.NDArray[np.bool_]] = {}
        self._columns: dict[str, tuple[int, npt.NDArray[np.int64]]] = {}

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
        earlier = self._elevated.get(at)
        if earlier is not None:  # several load signals (a user's own): any one's extra load
            flags[: earlier.size] |= earlier
        self._elevated[at] = flags

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
