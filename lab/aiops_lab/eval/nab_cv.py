"""`aiops eval nab --cv`: leave-one-category-out cross-validation of the detector's settings.

For each NAB category in turn, every setting of the grid (aiops.detect.presets.NOVELTY_GRID,
or the wider one) and the threshold rule's risk are chosen on the other categories (the largest
summed standard raw score), and the held-out category is scored with that choice; the held-out
raw scores are summed and normalised as NAB does. The same choice made on every category is the
full-split figure, and it must be what presets.py ships.

Cheap by construction: the detector runs once per combination of the settings that shape its
novelty (smoothing), with neither refractory period nor threshold; the threshold rule (SPOT at
each risk, aiops.detect.spot, on cumulative statistics of the novelty) and the refractory
period are then applied to the recorded novelty, exactly as the streaming detector applies them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aiops.detect.novelty import NoveltyConfig, NoveltyDetector
from aiops.detect.spot import PeaksState, spot_threshold
from aiops_lab.eval.nab_io import NabCorpus
from aiops_lab.eval.nab_scoring import (
    DEFAULT_PROFILES,
    FileLayout,
    layout_file,
    normalise,
    score_file,
)

FloatArray = npt.NDArray[np.float64]
STANDARD = DEFAULT_PROFILES[0]
#: Applied after the detector (see the module docstring); every other setting shapes novelty.
POST_SETTINGS = ("refractory", "risk", "min_novelty")


@dataclass(frozen=True)
class Fold:
    category: str
    choice: dict[str, Any]
    raw: float  # held-out raw standard score
    windows: int


@dataclass(frozen=True)
class CvResult:
    folds: list[Fold]
    cv_score: float  # normalised, held-out raw scores summed
    full_choice: dict[str, Any]
    full_score: float
    grid: dict[str, tuple[Any, ...]]


def category(name: str) -> str:
    return name.split("/", 1)[0]


def raw_novelty(
    values: FloatArray, periods: npt.NDArray[np.int64], config: NoveltyConfig
) -> FloatArray:
    """[T, n] novelty per row (0 before the warm-up and on gaps), no refractory, no threshold."""
    plain = dataclasses.replace(config, refractory=0, risk=0.0)
    det = NoveltyDetector(values.shape[1], plain, period=periods)
    out = np.zeros_like(values)
    for t in range(values.shape[0]):
        warm = det.state.count >= config.warmup
        det.step(values[t])
        out[t] = np.where(warm & np.isfinite(values[t]), det.blame.max(axis=0), 0.0)
    return out


def cumulative_peaks(novelty: FloatArray, valid: npt.NDArray[np.bool_]) -> PeaksState:
    """For every row, the SPOT statistics (aiops.detect.spot.update_peaks) of the rows before
    it, at once."""
    peak = valid & (novelty > 0)
    x = np.where(peak, novelty, 0.0)

    def before(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.concatenate([[0], np.cumsum(a)[:-1]])

    return PeaksState(
        before(valid.astype(np.int64)),
        before(peak.astype(np.int64)),
        before(x),
        before(x * x),
        np.concatenate([[0.0], np.maximum.accumulate(x)[:-1]]),
    )


def detections(
    novelty: FloatArray, valid: npt.NDArray[np.bool_], config: NoveltyConfig
) -> npt.NDArray[np.bool_]:
    """The streaming detector's alarms for one series: novelty above the SPOT threshold of the
    rows before it (at least `min_novelty`), then quiet for `refractory` rows after each."""
    state = cumulative_peaks(novelty, valid)
    z = np.maximum(spot_threshold(state, config.risk, config.min_peaks), config.min_novelty)
    hits = np.flatnonzero(novelty / (novelty + z + 1e-12) >= 0.5)
    out = np.zeros(len(novelty), bool)
    last = -(10**12)
    for i in hits.tolist():
        if i - last > config.refractory:
            out[i] = True
            last = i
    return out


def _combinations(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*grid.values())]


def cross_validate(
    corpus: NabCorpus,
    base: NoveltyConfig,
    grid: Mapping[str, Sequence[Any]],
    periods: npt.NDArray[np.int64],
) -> CvResult:
    files = corpus.files
    layouts: list[FileLayout] = [
        layout_file(f.name, f.timestamps, corpus.windows[f.name]) for f in files
    ]
    cats = np.array([category(f.name) for f in files])
    longest = max(len(f.values) for f in files)
    x = np.full((longest, len(files)), np.nan)
    for j, f in enumerate(files):
        x[: len(f.values), j] = f.values
    valid = np.isfinite(x)
    shape_grid = {k: v for k, v in grid.items() if k not in POST_SETTINGS}
    post_grid = {k: grid.get(k, (getattr(base, k),)) for k in POST_SETTINGS}
    choices: list[dict[str, Any]] = []
    table: list[FloatArray] = []  # per choice, per file raw standard score
    for shape in _combinations(shape_grid):
        config = dataclasses.replace(base, **shape)
        nov = raw_novelty(x, periods, config)
        for post in _combinations(post_grid):
            chosen = dataclasses.replace(config, **post)
            row = np.array(
                [
                    score_file(
                        lay,
                        detections(nov[: lay.n_rows, j], valid[: lay.n_rows, j], chosen),
                        STANDARD,
                    ).score
                    for j, lay in enumerate(layouts)
                ]
            )
            choices.append({**shape, **post})
            table.append(row)
    scores = np.stack(table)  # [choices, files]
    windows = {
        c: sum(lay.n_windows for lay, cc in zip(layouts, cats, strict=True) if cc == c)
        for c in set(cats.tolist())
    }
    folds = []
    for c in sorted(windows):
        train = cats != c
        best = int(np.argmax(scores[:, train].sum(axis=1)))  # first of ties: grid order
        folds.append(Fold(c, choices[best], float(scores[best, ~train].sum()), windows[c]))
    total_windows = sum(windows.values())
    full = int(np.argmax(scores.sum(axis=1)))
    return CvResult(
        folds=folds,
        cv_score=normalise(sum(f.raw for f in folds), total_windows, STANDARD),
        full_choice=choices[full],
        full_score=normalise(float(scores[full].sum()), total_windows, STANDARD),
        grid={k: tuple(v) for k, v in grid.items()},
    )
