"""Where did the incident start? A multivariate change point near the alarm time.

Detectors raise the alarm after the change (BARO's motivation for its Bayesian change-point step,
and RCAEval's finding that N-Sigma and CIRCA collapse when the time is off by 60 s). The ranking
compares "after" with "before", so rows between the real onset and the alarm would pollute the
baseline. Here every column gets the classic mean-shift statistic for every candidate split,

    |mean(after) - mean(before)| * sqrt(k (n - k) / n) / noise,

noise from successive differences (robust to the shift itself); the candidate where the strongest
few columns agree most is the onset. Vectorised with cumulative sums: O(rows x columns).
"""

from __future__ import annotations

import math

import numpy as np

from aiops.rca.models import MetricsMatrix
from aiops.rca.scoring import nan_quantiles


def estimate_onset(
    matrix: MetricsMatrix,
    alarm_time: float,
    *,
    search_back_s: float,
    context_s: float = 1800.0,
    after_s: float = 300.0,
    top_k: int = 10,
    clip: float = math.inf,
    min_rows: int = 3,
) -> float:
    """The most likely start of the change in [alarm - search_back_s, alarm]; the alarm time when
    no candidate has enough rows around it."""
    t = matrix.times
    lo = int(np.searchsorted(t, alarm_time - search_back_s - context_s))
    hi = int(np.searchsorted(t, alarm_time + after_s, side="right"))
    seg = matrix.values[lo:hi]
    times = t[lo:hi]
    n = seg.shape[0]
    if n < 2 * min_rows or seg.shape[1] == 0:
        return alarm_time
    # Missing samples: carry the previous value (then the next) so cumulative sums stay defined.
    filled = _fill(seg)
    usable = np.all(np.isfinite(filled), axis=0)
    if not usable.any():
        return alarm_time
    x = filled[:, usable]
    (dmed,) = nan_quantiles(np.abs(np.diff(x, axis=0)), (0.5,))
    spread = np.abs(np.nanmedian(x, axis=0))
    noise = np.fmax(dmed / 0.954, 0.01 * spread)
    noise = np.where(noise > 0, noise, 1e-6)

    csum = np.cumsum(x, axis=0)
    total = csum[-1]
    k = np.arange(1, n)[:, None]  # split before row k
    mean_before = csum[:-1] / k
    mean_after = (total - csum[:-1]) / (n - k)
    stat = np.abs(mean_after - mean_before) * np.sqrt(k * (n - k) / n) / noise

    candidates = (times[1:] >= alarm_time - search_back_s) & (times[1:] <= alarm_time)
    candidates &= (np.arange(1, n) >= min_rows) & (np.arange(1, n) <= n - min_rows)
    if not candidates.any():
        return alarm_time
    top = min(top_k, stat.shape[1])
    # Evidence of the strongest columns at each split: squared statistics (a chi-square-like sum,
    # so columns that really shifted outweigh the noise of the others), clipped so one runaway
    # column cannot decide alone.
    strongest = -np.sort(-np.minimum(stat, clip), axis=1)[:, :top]
    agg = (strongest**2).sum(axis=1)
    agg = np.where(candidates, agg, -math.inf)
    return float(times[1:][int(np.argmax(agg))])


def _fill(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    for i in range(1, out.shape[0]):
        gap = np.isnan(out[i])
        out[i, gap] = out[i - 1, gap]
    for i in range(out.shape[0] - 2, -1, -1):
        gap = np.isnan(out[i])
        out[i, gap] = out[i + 1, gap]
    return out
