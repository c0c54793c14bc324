"""Per-metric scores: how far each metric left its normal period after the anomaly time.

Robust scoring as in BARO (Pham et al., FSE'24): the normal period is summarised by its median and
inter-quartile range, so earlier incidents inside the look-back window do not inflate the baseline
the way mean/std (N-Sigma) do. Two changes measured on the development cases:

* the scale is floored at a fraction of |median|, so a metric that never moved before (a constant
  memory gauge, a latency stuck on one histogram bucket) does not get an infinite z from a wiggle;
* the score is the k-th largest |z| in the window, not the largest, so a single-sample spike (a
  scrape glitch, a lone slow request on an idle service) cannot outrank a sustained shift.

Then every metric is compared with the same metric of the other services ("peer" score, in log
space): p99 latency of idle services is noisy everywhere, a CPU jump from 1 % to 100 % is not.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from aiops.rca.models import MetricsMatrix, RcaInputError, metric_of

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ScoringConfig:
    window_s: float = 300.0  # how long after the anomaly time to look
    baseline_s: float | None = None  # how far back the normal period goes (None: all rows before)
    min_baseline_rows: int = 3
    rel_floor: float = 0.01  # scale >= rel_floor * |median|
    sustain: int = 2  # score = sustain-th largest |z| in the window
    onset_z: float = 3.0  # |z| at which a metric counts as departed (onset time)
    z_cap: float = 1e4
    # "iqr": median/IQR of the normal period (BARO); "std": mean/std (N-Sigma).
    # "diff": noise from successive differences (median |x[t] - x[t-1]| / 0.954), which earlier
    # incidents in the normal period (level shifts) barely move; "min": the smaller of iqr and diff.
    scale: Literal["iqr", "std", "diff", "min"] = "min"
    # The level to depart from: median of the last `level_s` seconds before the anomaly time
    # (None: of the whole normal period).
    level_s: float | None = 120.0
    # A normal period with zero spread: "std" falls back to its std, then to a tiny unit (any change
    # registers, capped by z_cap); "unit" divides by 1 as scikit-learn's RobustScaler (BARO) does;
    # "skip" leaves the column unscored.
    flat_scale: Literal["std", "unit", "skip"] = "std"
    peer: bool = True  # compare each metric with the same metric of the other services
    peer_min_services: int = 3
    peer_mad_floor: float = 0.1


@dataclass(frozen=True)
class MetricScores:
    """Column-aligned arrays (NaN where a column cannot be scored)."""

    score: FloatArray  # sustained robust |z|
    direction: FloatArray  # +1 / -1
    baseline: FloatArray
    scale: FloatArray
    value: FloatArray
    onset: FloatArray  # unix seconds, NaN when never above onset_z
    peer: FloatArray  # standing among peers for the same metric kind


def split_rows(m: MetricsMatrix, anomaly_time: float, cfg: ScoringConfig) -> tuple[slice, slice]:
    """Row ranges of the normal period and the anomalous window."""
    t = m.times
    i0 = int(np.searchsorted(t, anomaly_time, side="left"))
    lo = 0 if cfg.baseline_s is None else int(np.searchsorted(t, anomaly_time - cfg.baseline_s))
    hi = int(np.searchsorted(t, anomaly_time + cfg.window_s, side="left"))
    hi = max(hi, i0 + 1)
    if i0 - lo < cfg.min_baseline_rows:
        raise RcaInputError(
            f"only {i0 - lo} row(s) before the anomaly time {anomaly_time:.0f}; at least "
            f"{cfg.min_baseline_rows} are needed for a baseline (query a longer range before it)"
        )
    if i0 >= t.size:
        raise RcaInputError(
            f"no rows at or after the anomaly time {anomaly_time:.0f} (last row at "
            f"{t[-1]:.0f}); query a range that covers the anomaly"
        )
    return slice(lo, i0), slice(i0, min(hi, t.size))


def score_metrics(
    m: MetricsMatrix, anomaly_time: float, cfg: ScoringConfig | None = None
) -> MetricScores:
    cfg = cfg or ScoringConfig()
    normal_rows, window_rows = split_rows(m, anomaly_time, cfg)
    # Infinite samples (a division by zero upstream) carry no information: treat as missing.
    normal = np.where(np.isinf(m.values[normal_rows]), np.nan, m.values[normal_rows])
    window = np.where(np.isinf(m.values[window_rows]), np.nan, m.values[window_rows])
    ncol = m.values.shape[1]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # All-NaN columns warn here; `valid` masks them out below.
        warnings.simplefilter("ignore", RuntimeWarning)
        valid = np.sum(np.isfinite(normal), axis=0) >= cfg.min_baseline_rows
        if cfg.scale == "std":
            median = np.nanmean(normal, axis=0)
            scale = np.nanstd(normal, axis=0)
        else:
            q25, median, q75 = nan_quantiles(normal, (0.25, 0.5, 0.75))
            scale = (q75 - q25) / 1.349
            if cfg.scale in ("diff", "min"):
                (dmed,) = nan_quantiles(np.abs(np.diff(normal, axis=0)), (0.5,))
                dscale = dmed / 0.954
                scale = dscale if cfg.scale == "diff" else np.fmin(scale, dscale)
        level = median
        if cfg.level_s is not None:
            recent = m.times[normal_rows] >= anomaly_time - cfg.level_s
            if recent.sum() >= 1:
                (lv,) = nan_quantiles(normal[recent], (0.5,))
                level = np.where(np.isfinite(lv), lv, median)
        scale = np.fmax(scale, cfg.rel_floor * np.abs(median))
        # A baseline that never moved and sits at zero: fall back to its std, then to a tiny
        # unit so that any change still registers (capped below).
        if cfg.flat_scale == "unit":
            scale = np.where(scale > 0, scale, 1.0)
        elif cfg.flat_scale == "skip":
            valid &= scale > 0
        std = np.nanstd(normal, axis=0)
        scale = np.where(scale > 0, scale, std)
        scale = np.where(scale > 0, scale, 1e-6)
        # A departure must be away from both the recent level and the long-run median: a metric
        # returning to normal after an earlier incident is not a new fault.
        z_recent = (window - level) / scale
        z_long = (window - median) / scale
        z = np.where(np.abs(z_recent) <= np.abs(z_long), z_recent, z_long)
        z = np.clip(z, -cfg.z_cap, cfg.z_cap)
        absz = np.where(np.isfinite(z), np.abs(z), -np.inf)

    order = np.argsort(-absz, axis=0, kind="stable")
    k = min(cfg.sustain, window.shape[0]) - 1
    pick = order[k] if window.shape[0] else np.zeros(ncol, dtype=np.int64)
    cols = np.arange(ncol)
    score = absz[pick, cols] if window.shape[0] else np.full(ncol, np.nan)
    score = np.where(np.isfinite(score) & valid, score, np.nan)
    zval = z[pick, cols] if window.shape[0] else np.full(ncol, np.nan)
    direction = np.where(zval < 0, -1.0, 1.0)
    value = window[pick, cols] if window.shape[0] else np.full(ncol, np.nan)

    above = absz >= cfg.onset_z
    first = np.argmax(above, axis=0)
    wtimes = m.times[window_rows]
    onset = np.where(above.any(axis=0) & valid, wtimes[first], np.nan)

    peer = peer_scores(m.columns, score, cfg) if cfg.peer else np.log1p(score)
    return MetricScores(
        score=score,
        direction=direction,
        baseline=np.where(valid, median, np.nan),
        scale=np.where(valid, scale, np.nan),
        value=value,
        onset=onset,
        peer=peer,
    )


def nan_quantiles(a: FloatArray, qs: tuple[float, ...]) -> list[FloatArray]:
    """Column-wise quantiles ignoring NaN (linear interpolation, as numpy's default).

    np.nanpercentile loops over columns in Python; one sort of the whole matrix is ~50x faster
    on a few thousand columns.
    """
    ordered = np.sort(a, axis=0)  # NaN sorts last
    n = np.sum(~np.isnan(a), axis=0)
    cols = np.arange(a.shape[1])
    out = []
    for q in qs:
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = pos - lo
        val = (
            ordered[lo, cols] * (1 - frac) + ordered[hi, cols] * frac
            if a.shape[0]
            else (np.full(a.shape[1], np.nan))
        )
        out.append(np.where(n > 0, val, np.nan))
    return out


def peer_scores(
    columns: tuple[str, ...], score: FloatArray, cfg: ScoringConfig, floor: float | None = None
) -> FloatArray:
    """Robust standing of each column's log score among the same metric kind of other services.

    Kinds present on fewer than `peer_min_services` services are compared with all columns. The
    spread is floored at `floor` (default `cfg.peer_mad_floor`).
    """
    floor = cfg.peer_mad_floor if floor is None else floor
    logs = np.log1p(np.where(np.isfinite(score), score, np.nan))
    out = np.full(score.shape, np.nan)
    kinds: dict[str, list[int]] = {}
    for j, c in enumerate(columns):
        kinds.setdefault(metric_of(c), []).append(j)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        glob_med = float(np.nanmedian(logs)) if np.isfinite(logs).any() else 0.0
        glob_mad = float(np.nanmedian(np.abs(logs - glob_med))) if np.isfinite(logs).any() else 1.0
    for idx in kinds.values():
        v = logs[idx]
        finite = v[np.isfinite(v)]
        if finite.size >= cfg.peer_min_services:
            med = float(np.median(finite))
            mad = float(np.median(np.abs(finite - med)))
        else:
            med, mad = glob_med, glob_mad
        out[idx] = (v - med) / max(mad, floor)
    return out


def typical_spread(columns: tuple[str, ...], score: FloatArray, cfg: ScoringConfig) -> float:
    """The spread (MAD of the log score) a metric kind typically has among services: the unit
    of peer standing, for columns whose own spread says nothing (most services at zero)."""
    logs = np.log1p(np.where(np.isfinite(score), score, np.nan))
    kinds: dict[str, list[int]] = {}
    for j, c in enumerate(columns):
        kinds.setdefault(metric_of(c), []).append(j)
    spreads = []
    for idx in kinds.values():
        finite = logs[idx][np.isfinite(logs[idx])]
        if finite.size >= cfg.peer_min_services:
            spreads.append(float(np.median(np.abs(finite - np.median(finite)))))
    return max(float(np.median(spreads)), cfg.peer_mad_floor) if spreads else cfg.peer_mad_floor
