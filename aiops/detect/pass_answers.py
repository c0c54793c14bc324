"""A signal's series from the detection pass's answer: split out of a shared answer, renamed.

Split (`split_shared`): request signals that declare a shared query (`SharedQuery`) read one
answer, the request counter's rate summed by the part's labels, a view label (`worst_of`, e.g.
Istio's reporter) and a failed mark. The rate is the sum of the series kept (`where`); the
error ratio is, per view, the failed series' sum over all series' sum (0 where none failed,
NaN where nothing was counted, as `(failed or total * 0) / total` gives), and the largest view
counts (`max by`, NaN only where every view is NaN). What the signals' own PromQL answers, in
one evaluation of the rate instead of four (tests/profiles/test_pass_query.py checks it against
a real Prometheus for every profile).

Rename (`canonical_series`): the pass asks for a one-part signal without the part's
label_replace renames (`Signal.pass_query`) and renames here what the PromQL would have: each
canonical label takes the value of the exporter's label it maps to (absent or empty: the label
is left out, as label_replace deletes a label it sets to ""), every other label is dropped, and
series that end up with the same labels are merged by their largest value at each time
(`max by`, NaN only where every one of them is NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import overload

import numpy as np
import numpy.typing as npt

from aiops.detect.pass_types import QueryPlan, SeriesLike
from aiops.profiles.signal import SharedQuery

_TIMES, _VALUES = attrgetter("timestamps"), attrgetter("values")


@dataclass(frozen=True)
class Renamed:
    """One series of an answer under the signal's labels."""

    labels: Mapping[str, str]
    timestamps: Sequence[float]
    values: Sequence[float]


class AnswerReader:
    """`read_answer` that remembers how each shared answer splits: Prometheus answers a query in
    the same order pass after pass, so when an answer's label sets are the last one's (one
    comparison, in C) the split's rows and the signal's label sets are too, and only the values
    are new. At 20,000 workloads that leaves a steady pass's split a few tens of milliseconds
    of numpy instead of ~300 ms of Python per signal."""

    def __init__(self) -> None:
        self._layouts: dict[tuple[str, tuple[tuple[str, str], ...]], _Layout] = {}

    def read(self, plan: QueryPlan, series: Sequence[SeriesLike]) -> Sequence[SeriesLike]:
        form = plan.form
        if form is None or form.shared is None:
            return read_answer(plan, series)
        key = (form.key, form.labels)
        labels = [s.labels for s in series]
        layout = self._layouts.get(key)
        if layout is None or layout.labels != labels:
            layout = self._layouts[key] = _Layout.of(labels, form.shared, form.labels)
        return layout.split(series)


class Columns(Sequence[SeriesLike]):
    """A signal's series held as flat arrays (what a split gives): the pass builds its block
    from `flat()` and reads `labels`; a series as an object only where one is asked for. A
    cold start's split at 40,000 series x 61 steps as Python lists of floats was ~300 MB."""

    def __init__(
        self,
        labels: list[dict[str, str]],
        lens: npt.NDArray[np.int64],
        times: npt.NDArray[np.float64],
        values: npt.NDArray[np.float64],
    ) -> None:
        self.labels = labels
        self._lens, self._times, self._values = lens, times, values
        self._ends = np.cumsum(lens)

    def flat(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Points per series, then every series' times and values one after another."""
        return self._lens, self._times, self._values

    def __len__(self) -> int:
        return len(self.labels)

    @overload
    def __getitem__(self, i: int) -> SeriesLike: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[SeriesLike]: ...
    def __getitem__(self, i: int | slice) -> SeriesLike | Sequence[SeriesLike]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        end = int(self._ends[i])
        start = end - int(self._lens[i])
        return Renamed(
            self.labels[i],
            self._times[start:end].tolist(),
            self._values[start:end].tolist(),
        )


def read_answer(plan: QueryPlan, series: Sequence[SeriesLike]) -> Sequence[SeriesLike]:
    """The plan's signal from its answer: split out of a shared one, under its own labels."""
    form = plan.form
    if form is None:
        return list(series)
    if form.shared is not None:
        return split_shared(series, form.shared, form.labels)
    return canonical_series(series, form.labels)


def canonical_series(
    series: Sequence[SeriesLike], pairs: Sequence[tuple[str, str]]
) -> list[SeriesLike]:
    """`series` with the labels `pairs` (canonical, the exporter's) name; () changes nothing."""
    if not pairs:
        return list(series)
    out: dict[tuple[str, ...], list[SeriesLike]] = {}
    for s in series:
        key = tuple(s.labels.get(source, "") for _, source in pairs)
        out.setdefault(key, []).append(s)
    return [
        _merged({c: v for (c, _), v in zip(pairs, key, strict=True) if v}, group)
        for key, group in out.items()
    ]


def _merged(labels: dict[str, str], group: list[SeriesLike]) -> SeriesLike:
    if len(group) == 1:
        return Renamed(labels, group[0].timestamps, group[0].values)
    best: dict[float, float] = {}
    for s in group:
        for t, v in zip(s.timestamps, s.values, strict=True):
            old = best.get(t)
            if old is None or math.isnan(old) or v > old:
                best[t] = v
    times = sorted(best)
    return Renamed(labels, times, [best[t] for t in times])


def split_shared(
    series: Sequence[SeriesLike], shared: SharedQuery, pairs: Sequence[tuple[str, str]]
) -> Columns:
    """The signal `shared` describes, from its shared answer: one series per value of the
    exporter's labels `pairs` maps, under the canonical ones."""
    return _Layout.of([s.labels for s in series], shared, pairs).split(series)


@dataclass(frozen=True)
class _Layout:
    """How an answer with these label sets splits: which series a signal keeps, the row of
    each (an entity and a view), which failed, each row's entity and each entity's labels."""

    labels: list[Mapping[str, str]]  # the answer's, in its order
    kept: npt.NDArray[np.int64]  # answer positions the signal keeps (`where`)
    rows: npt.NDArray[np.int64]  # by kept series: its (entity, view) row
    failed: npt.NDArray[np.bool_] | None  # by kept series (None: the signal is the rate)
    entity_of: npt.NDArray[np.int64]  # by row
    entities: list[dict[str, str]]  # canonical labels, by entity

    @classmethod
    def of(
        cls,
        labels: list[Mapping[str, str]],
        shared: SharedQuery,
        pairs: Sequence[tuple[str, str]],
    ) -> _Layout:
        kept = np.arange(len(labels))
        if shared.where:
            kept = np.flatnonzero(_matching(labels, shared.where))
        mine = [labels[i] for i in kept.tolist()]
        # One row per (entity, view): the entity's exporter labels, then the view's value.
        columns = [[lab.get(source) for lab in mine] for _, source in pairs]
        view = shared.worst_of
        columns.append([lab.get(view) for lab in mine] if view else [None] * len(mine))
        keys: dict[tuple[str | None, ...], int] = {}
        rows = [keys.setdefault(k, len(keys)) for k in zip(*columns, strict=True)]
        ids: dict[tuple[str | None, ...], int] = {}
        entity_of = [ids.setdefault(k[:-1], len(ids)) for k in keys]
        names = [c for c, _ in pairs]
        return cls(
            labels,
            kept,
            np.asarray(rows, np.int64),
            None if shared.failed is None else _matching(mine, shared.failed),
            np.asarray(entity_of, np.int64),
            [{c: v for c, v in zip(names, e, strict=True) if v} for e in ids],
        )

    def split(self, series: Sequence[SeriesLike]) -> Columns:
        """Each entity's series from this answer's values: the rate summed over the kept
        series, or the failed share of it per view, the largest view counting."""
        kept = [series[i] for i in self.kept.tolist()]
        lens, ts, vs = flat_points(kept)
        times, col = np.unique(ts, return_inverse=True)
        owner = np.repeat(np.arange(len(kept)), lens)
        row = self.rows[owner]
        shape = (self.entity_of.size, times.size)
        total, present = np.zeros(shape), np.zeros(shape, bool)
        np.add.at(total, (row, col), vs)
        present[row, col] = True
        if self.failed is None:
            value = total
        else:
            bad = np.zeros(shape)
            f = self.failed[owner]
            np.add.at(bad, (row[f], col[f]), vs[f])
            with np.errstate(divide="ignore", invalid="ignore"):
                value = bad / total
        # The largest view per entity (NaN only where all are), present where any view is.
        best = np.full((len(self.entities), times.size), np.nan)
        seen = np.zeros(best.shape, bool)
        r, c = np.nonzero(present)
        np.fmax.at(best, (self.entity_of[r], c), value[r, c])
        seen[self.entity_of[r], c] = True
        # Each entity's points, one entity after another (row-major: by entity, then time).
        er, ec = np.nonzero(seen)
        lens = np.bincount(er, minlength=len(self.entities)).astype(np.int64)
        return Columns(self.entities, lens, times[ec], best[er, ec])


def _matching(labels: list[Mapping[str, str]], wanted: Mapping[str, str]) -> npt.NDArray[np.bool_]:
    """Which label sets hold every wanted value (a column compare per label, not per set)."""
    ok = np.ones(len(labels), bool)
    for k, v in wanted.items():
        ok &= np.array([lab.get(k) for lab in labels], object) == v
    return ok


def flat_points(
    series: Sequence[SeriesLike],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points per series, then every series' times and values one after another: all at once
    (10,000 series: no per-series numpy calls), through map and attrgetter rather than
    generators (no Python frame per series)."""
    m = len(series)
    times, values = list(map(_TIMES, series)), list(map(_VALUES, series))
    lens = np.fromiter(map(len, times), np.int64, m)
    vlens = np.fromiter(map(len, values), np.int64, m)
    if not np.array_equal(lens, vlens):
        j = int(np.flatnonzero(lens != vlens)[0])
        raise ValueError(
            f"series {dict(series[j].labels)} has {lens[j]} timestamps but {vlens[j]} values"
        )
    total = int(lens.sum())
    ts = np.fromiter(chain.from_iterable(times), np.float64, total)
    vs = np.fromiter(chain.from_iterable(values), np.float64, total)
    return lens, ts, vs
