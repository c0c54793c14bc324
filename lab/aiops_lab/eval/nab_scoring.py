"""NAB v1.1 scoring (numenta/NAB `nab/sweeper.py`), reimplemented over numpy arrays.

Per row of a file we precompute which window it falls in and what a detection there is worth;
scoring at a threshold and the corpus-wide threshold sweep are then cheap array operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Profile:
    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


DEFAULT_PROFILES: tuple[Profile, ...] = (
    Profile("standard", 1.0, 0.11, 1.0),
    Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
)


def scaled_sigmoid(y: FloatArray | float) -> FloatArray:
    """NAB's sig(y) = 2/(1+e^(5y)) - 1, clipped like NAB's (y > 3 counts as -1)."""
    arr = np.asarray(y, dtype=np.float64)
    out = 2.0 / (1.0 + np.exp(np.clip(5.0 * arr, -700, 700))) - 1.0
    return np.where(arr > 3.0, -1.0, out)


def probationary_length(n_rows: int, probationary_percent: float = 0.15) -> int:
    return int(min(math.floor(probationary_percent * n_rows), probationary_percent * 5000))


@dataclass
class FileLayout:
    """What a detection at each row of one file is worth (independent of the detector)."""

    name: str
    n_rows: int
    probation: int
    window_id: IntArray  # -1 outside every window
    tp_value: FloatArray  # sig(y)/sig(-1) inside windows, 0 elsewhere
    fp_value: FloatArray  # sig(distance past previous window) or -1, 0 inside windows
    n_windows: int
    window_bounds: list[tuple[int, int]] = field(default_factory=list)


def layout_file(
    name: str,
    timestamps: npt.NDArray[np.datetime64],
    windows: list[tuple[np.datetime64, np.datetime64]],
) -> FileLayout:
    n = len(timestamps)
    window_id = np.full(n, -1, dtype=np.int64)
    tp_value = np.zeros(n)
    fp_value = np.full(n, -1.0)
    max_tp = float(scaled_sigmoid(-1.0))
    bounds: list[tuple[int, int]] = []
    for wid, (start, end) in enumerate(sorted(windows)):
        inside = np.flatnonzero((timestamps >= start) & (timestamps <= end))
        if inside.size == 0:
            continue
        left, right = int(inside[0]), int(inside[-1])
        width = float(right - left + 1)
        idx = np.arange(left, right + 1)
        window_id[idx] = wid
        tp_value[idx] = scaled_sigmoid(-(right - idx + 1) / width) / max_tp
        fp_value[idx] = 0.0
        bounds.append((left, right))
        # Rows after this window and before the next one are judged by their distance past it.
        nxt = n
        if wid + 1 < len(windows):
            later = np.flatnonzero(timestamps >= sorted(windows)[wid + 1][0])
            nxt = int(later[0]) if later.size else n
        after = np.arange(right + 1, nxt)
        denom = max(width - 1.0, 1.0)
        fp_value[after] = scaled_sigmoid(np.abs(right - after) / denom)
    return FileLayout(
        name=name,
        n_rows=n,
        probation=probationary_length(n),
        window_id=window_id,
        tp_value=tp_value,
        fp_value=fp_value,
        n_windows=len(bounds),
        window_bounds=bounds,
    )


@dataclass(frozen=True)
class FileScore:
    name: str
    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total: int
    windows_detected: int
    n_windows: int


def score_file(
    layout: FileLayout, detections: npt.NDArray[np.bool_], profile: Profile
) -> FileScore:
    """Raw NAB score of one file given boolean detections per row."""
    det = detections.copy()
    det[: layout.probation] = False
    scored = np.zeros(layout.n_rows, dtype=bool)
    scored[layout.probation :] = True
    in_win = layout.window_id >= 0
    score = float(np.sum(layout.fp_value[det & ~in_win])) * profile.fp_weight
    detected = 0
    for left, right in layout.window_bounds:
        hits = np.flatnonzero(det[left : right + 1])
        if hits.size:
            detected += 1
            score += float(layout.tp_value[left + hits[0]]) * profile.tp_weight
        else:
            score -= profile.fn_weight
    tp = int(np.sum(det & in_win))
    fp = int(np.sum(det & ~in_win))
    fn = int(np.sum(~det & in_win & scored))
    tn = int(np.sum(~det & ~in_win & scored))
    return FileScore(layout.name, score, tp, tn, fp, fn, layout.n_rows, detected, layout.n_windows)


def normalise(raw: float, n_windows: int, profile: Profile) -> float:
    """100·(S - S_null)/(S_perfect - S_null): 0 for a detector that never fires, 100 for perfect."""
    perfect = n_windows * profile.tp_weight
    null = -n_windows * profile.fn_weight
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def sweep_threshold(
    layouts: list[FileLayout],
    scores: list[FloatArray],
    profile: Profile,
) -> tuple[float, float]:
    """Threshold maximising the corpus raw score over every distinct score value (NAB's oracle).

    Returns (threshold, raw score). Detections are score >= threshold, so lowering the threshold
    past a value adds every row holding it at once; ties are resolved before evaluating.
    """
    vals: list[FloatArray] = []
    fpv: list[FloatArray] = []
    tpv: list[FloatArray] = []
    wins: list[IntArray] = []
    offset = 0
    n_windows = 0
    for lay, sc in zip(layouts, scores, strict=True):
        p = lay.probation
        vals.append(np.nan_to_num(np.asarray(sc[p:], dtype=np.float64), nan=-np.inf))
        wid = lay.window_id[p:]
        fpv.append(np.where(wid < 0, lay.fp_value[p:] * profile.fp_weight, 0.0))
        tpv.append(np.where(wid >= 0, lay.tp_value[p:] * profile.tp_weight, 0.0))
        wins.append(np.where(wid >= 0, wid + offset, -1))
        offset += max(lay.n_windows, int(lay.window_id.max()) + 1 if lay.n_rows else 0)
        n_windows += lay.n_windows
    v = np.concatenate(vals)
    order = np.argsort(-v, kind="stable")
    v = v[order]
    fp = np.concatenate(fpv)[order]
    tp = np.concatenate(tpv)[order]
    w = np.concatenate(wins)[order]
    delta = fp.copy()
    # A window's contribution moves from -A_FN to its best (earliest) TP value seen so far.
    win_rows = np.flatnonzero(w >= 0)
    if win_rows.size:
        ww = w[win_rows]
        tv = tp[win_rows]
        grp_order = np.argsort(ww, kind="stable")  # keeps score-descending order inside a group
        g = ww[grp_order]
        t = tv[grp_order]
        starts = np.r_[True, g[1:] != g[:-1]]
        run_max = _grouped_cummax(t, starts)
        prev = np.where(starts, -profile.fn_weight, np.r_[0.0, run_max[:-1]])
        d = np.maximum(run_max - prev, 0.0)
        d = np.where(starts, run_max + profile.fn_weight, d)
        delta_w = np.empty_like(d)
        delta_w[grp_order] = d
        delta[win_rows] += delta_w
    cum = np.cumsum(delta) - n_windows * profile.fn_weight
    # Only evaluate where the next value differs (all ties included) and at the end.
    last_of_tie = np.r_[v[1:] != v[:-1], True] & np.isfinite(v)
    base = -n_windows * profile.fn_weight
    if not np.any(last_of_tie):
        return 1.1, base
    cand = np.flatnonzero(last_of_tie)
    best = cand[int(np.argmax(cum[cand]))]
    if cum[best] <= base:
        return float(v[0]) + 1e-9 if np.isfinite(v[0]) else 1.1, base
    return float(v[best]), float(cum[best])


def _grouped_cummax(x: FloatArray, starts: npt.NDArray[np.bool_]) -> FloatArray:
    """Running maximum of x restarting at every True in starts."""
    out = x.copy()
    n = len(x)
    seg = np.cumsum(starts) - 1
    # Shift each group by a large offset so one global cummax never crosses group borders.
    span = float(np.max(np.abs(x))) * 2 + 4.0 if n else 1.0
    shifted = x + seg * span
    return np.maximum.accumulate(shifted) - seg * span if n else out
