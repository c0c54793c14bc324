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

import numpy as np

from aiops.detect.pass_types import QueryPlan, SeriesLike
from aiops.profiles.signal import SharedQuery

_TIMES, _VALUES = attrgetter("timestamps"), attrgetter("values")


@dataclass(frozen=True)
class Renamed:
    """One series of an answer under the signal's labels."""

    labels: Mapping[str, str]
    timestamps: Sequence[float]
    values: Sequence[float]


def read_answer(plan: QueryPlan, series: Sequence[SeriesLike]) -> list[SeriesLike]:
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
) -> list[SeriesLike]:
    """The signal `shared` describes, from its shared answer: one series per value of the
    exporter's labels `pairs` maps, under the canonical ones. At 20,000 workloads a steady pass
    splits each answer of 40,000 series in tens of milliseconds: no numpy call per series."""
    labels = [s.labels for s in series]
    if shared.where:
        keep = _matching(labels, shared.where)
        series = [s for s, k in zip(series, keep.tolist(), strict=True) if k]
        labels = [s.labels for s in series]
    kept = series
    # One row per (entity, view): the entity's exporter labels, then the view's value.
    columns = [[lab.get(source) for lab in labels] for _, source in pairs]
    view = shared.worst_of
    columns.append([lab.get(view) for lab in labels] if view else [None] * len(labels))
    keys: dict[tuple[str | None, ...], int] = {}
    rows = np.array([keys.setdefault(k, len(keys)) for k in zip(*columns, strict=True)], np.int64)
    lens = np.fromiter(map(len, map(_TIMES, kept)), np.int64, len(kept))
    ts = np.fromiter(chain.from_iterable(map(_TIMES, kept)), np.float64, int(lens.sum()))
    vs = np.fromiter(chain.from_iterable(map(_VALUES, kept)), np.float64, len(ts))
    times, col = np.unique(ts, return_inverse=True)
    owner = np.repeat(np.arange(len(kept)), lens)
    row = rows[owner]
    shape = (len(keys), len(times))
    total, present = np.zeros(shape), np.zeros(shape, bool)
    np.add.at(total, (row, col), vs)
    present[row, col] = True
    if shared.failed is None:
        value = total
    else:
        is_failed = _matching(labels, shared.failed)[owner]
        bad = np.zeros(shape)
        np.add.at(bad, (row[is_failed], col[is_failed]), vs[is_failed])
        with np.errstate(divide="ignore", invalid="ignore"):
            value = bad / total
    # The largest view per entity (NaN only where all are), present where any view is.
    entities: dict[tuple[str | None, ...], int] = {}
    of = np.fromiter(
        (entities.setdefault(k[:-1], len(entities)) for k in keys), np.int64, len(keys)
    )
    best = np.full((len(entities), len(times)), np.nan)
    seen = np.zeros(best.shape, bool)
    r, c = np.nonzero(present)
    np.fmax.at(best, (of[r], c), value[r, c])
    seen[of[r], c] = True
    # Each entity's points as slices of two flat lists (row-major order: by entity, then time).
    er, ec = np.nonzero(seen)
    flat_t, flat_v = times[ec].tolist(), best[er, ec].tolist()
    ends = np.cumsum(np.bincount(er, minlength=len(entities))).tolist()
    names = [c for c, _ in pairs]
    out: list[SeriesLike] = []
    start = 0
    for entity, end in zip(entities, ends, strict=True):
        out.append(
            Renamed(
                {c: v for c, v in zip(names, entity, strict=True) if v},
                flat_t[start:end],
                flat_v[start:end],
            )
        )
        start = end
    return out


def _matching(labels: list[Mapping[str, str]], wanted: Mapping[str, str]) -> np.ndarray:
    """Which label sets hold every wanted value (a column compare per label, not per set)."""
    ok = np.ones(len(labels), bool)
    for k, v in wanted.items():
        ok &= np.array([lab.get(k) for lab in labels], object) == v
    return ok
