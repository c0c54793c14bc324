"""Multivariate detector for a group of related series (a node's or a pod's metrics).

Fitted on a stretch of normal-ish history (`fit`), then scores new rows causally (`step` for one
row, `score` for a batch), and says which dimensions are to blame.

Why this shape (chosen on SMD dev, see README):
* each dimension is measured twice, in units of a high quantile (99th) of the same measure over
  the training rows (so a metric that is always jumpy needs a bigger excursion than a quiet one):
  its distance from the training median, and its distance from its own recent baseline (an
  EWMA). A dimension counts by the smaller of the two: unusual against training *and* a change
  from the recent past. Production data drift away from any training stretch; requiring both
  keeps a machine whose whole level moved from alarming forever, while a real excursion shows
  in both;
* the row score is the mean of the k largest such distances: one broken metric is enough, but
  two or three agreeing ones count more than one noisy outlier;
* the score is smoothed (EWMA), because incidents last minutes, not one sample;
* the alarm threshold comes from the detector's own scores: a margin over a high quantile of
  its scores on the training rows, lowered when its last few days of quiet scores give a lower
  one (aiops.detect.calibration). Training stretches hold incidents and restless days (SMD's
  do), so a bar from training alone is too high for a machine that is quiet now; it is never
  raised by recent scores, because a slow incident under the bar would raise it too;
* blame multiplies a dimension's distance from training with its distance from its own recent
  baseline: the dimensions that *changed now* and are *unusual* are the causes, whereas a metric
  that has sat at an unusual level for days is context.
NaN/Inf entries contribute nothing and never update state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from aiops.detect.calibration import RollingCalibration
from aiops.detect.spot import PeaksState, spot_threshold

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MultivariateConfig:
    scale_quantile: float = 0.99
    abs_floor: float = 0.01  # floor on the distance-from-training scale (data units)
    change_floor: float = 0.03  # floor on the change-from-baseline scale (data units)
    rel_floor: float = 0.0  # extra floor relative to each dimension's training range
    top_k: int = 3
    smooth_alpha: float = 0.1
    baseline_alpha: float = 0.01
    # While the group is alarming, its baselines learn this much slower, so a long incident is
    # not absorbed into "normal" halfway through.
    freeze_factor: float = 1.0
    # Alarm threshold, no labels: the larger of a floor (in training-99th-percentile units) and a
    # margin over a high quantile of the detector's own scores on the training rows (a group that
    # is restless even when nothing is wrong needs a higher bar); lowered by the same rule on its
    # recent quiet scores, see `calibration_rows`.
    threshold: float = 0.8
    threshold_quantile: float = 0.99
    threshold_margin: float = 1.2
    # "quantile" is the rule above; "spot" puts the threshold where a training score would
    # exceed it with probability `risk`, from a GPD fitted to the training scores over their
    # `spot_level` quantile (peaks over threshold, aiops.detect.spot), floored at `threshold`.
    threshold_rule: Literal["quantile", "spot"] = "quantile"
    risk: float = 1e-3
    spot_level: float = 0.98
    # The quantile rule applied to the detector's last this-many quiet scores too (the last
    # training rows', then the live ones'); the lower of the two thresholds holds (0: the
    # training threshold only). Quiet: under the threshold and more than `calibration_guard`
    # rows after the last score that was not. The SPOT rule reads the training scores only.
    calibration_rows: int = 4320
    calibration_guard: int = 60


@dataclass
class MultivariateModel:
    """What `fit` learned from training rows; plain arrays so it can be stored."""

    median: FloatArray
    scale: FloatArray
    change_scale: FloatArray
    mean: FloatArray
    std: FloatArray
    threshold: float


@dataclass
class MultivariateState:
    smooth: float = 0.0
    baseline: FloatArray = field(default_factory=lambda: np.zeros(0))
    count: int = 0
    calibration: RollingCalibration | None = None  # None: the threshold is the model's


@dataclass(frozen=True)
class Detection:
    """Scores of rows in order, the threshold each row was judged by, and the blame."""

    scores: FloatArray
    thresholds: FloatArray
    blame: FloatArray

    @property
    def alarms(self) -> npt.NDArray[np.bool_]:
        return self.scores >= self.thresholds


@dataclass
class MultivariateDetector:
    config: MultivariateConfig = field(default_factory=MultivariateConfig)
    model: MultivariateModel | None = None
    state: MultivariateState = field(default_factory=MultivariateState)
    train_scores: FloatArray = field(default_factory=lambda: np.zeros(0))  # from the last fit

    def fit(self, train: npt.ArrayLike) -> MultivariateModel:
        """Learn per-dimension behaviour and the alarm threshold from training rows only.

        Scores are in units of each dimension's training 99th percentile; the threshold comes
        from the detector's own scores on the training rows; no labels, no test data.
        """
        x = np.asarray(train, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError("training data must be a [rows, dims] matrix with at least 2 rows")
        c = self.config
        median = np.nanmedian(x, axis=0)
        dist = np.abs(x - median)
        q = np.nanquantile(dist, c.scale_quantile, axis=0)
        span = np.nanmax(x, axis=0) - np.nanmin(x, axis=0)
        floor = np.maximum(c.abs_floor, c.rel_floor * span)
        scale = np.maximum(np.nan_to_num(q, nan=0.0), floor)
        std = np.maximum(np.nan_to_num(np.nanstd(x, axis=0), nan=0.0), floor)
        mean = np.nan_to_num(np.nanmean(x, axis=0), nan=0.0)
        change = _causal_change(x, c.baseline_alpha)
        cq = np.nan_to_num(np.nanquantile(change, c.scale_quantile, axis=0), nan=0.0)
        change_scale = np.maximum(cq, np.maximum(c.change_floor, c.rel_floor * span))
        self.model = MultivariateModel(
            np.nan_to_num(median, nan=0.0), scale, change_scale, mean, std, c.threshold
        )
        # Run over the training rows once: scoring continues with warm baselines, and the
        # detector's own training scores set the threshold and start its calibration.
        self.train_scores = np.zeros(0)
        self.reset()
        train_scores, _ = self.score(x)
        self.train_scores = train_scores
        self.model.threshold = alarm_threshold(train_scores, c)
        self.state.calibration = _calibration(train_scores, c)
        return self.model

    def reset(self) -> None:
        """Start scoring afresh: cold baselines, calibration back to the training scores."""
        d = 0 if self.model is None else self.model.median.shape[0]
        calibration = _calibration(self.train_scores, self.config)
        self.state = MultivariateState(0.0, np.full(d, np.nan), 0, calibration)

    def score(self, rows: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Score rows [T, dims] in order; returns (scores [T], blame [T, dims])."""
        found = self.detect(rows)
        return found.scores, found.blame

    def detect(self, rows: npt.ArrayLike) -> Detection:
        """Score rows [T, dims] in order, each against the threshold in force when it came."""
        x = np.asarray(rows, dtype=np.float64)
        scores = np.empty(x.shape[0])
        thresholds = np.empty(x.shape[0])
        blame = np.empty(x.shape)
        for t in range(x.shape[0]):
            thresholds[t] = self.threshold
            scores[t], blame[t] = self.step(x[t])
        return Detection(scores, thresholds, blame)

    def step(self, row: npt.ArrayLike) -> tuple[float, FloatArray]:
        if self.model is None:
            raise RuntimeError("call fit() with training rows before scoring")
        m, c, s = self.model, self.config, self.state
        x = np.asarray(row, dtype=np.float64)
        ok = np.isfinite(x)
        xs = np.where(ok, x, m.median)
        base = np.where(np.isnan(s.baseline), xs, s.baseline)
        changed = np.abs(xs - base)
        u = np.minimum(np.abs(xs - m.median) / m.scale, changed / m.change_scale)
        u = np.where(ok, u, 0.0)
        k = min(c.top_k, u.shape[0])
        top = np.partition(u, u.shape[0] - k)[u.shape[0] - k :] if k else u[:0]
        raw = float(top.mean()) if k else 0.0
        if ok.any():
            s.smooth = raw if s.count == 0 else s.smooth + c.smooth_alpha * (raw - s.smooth)
        blame = (changed / m.std) * (np.abs(xs - m.mean) / m.std)
        blame = np.where(ok, blame, 0.0)
        bar = self.threshold  # the one this row is judged by
        a = c.baseline_alpha * (c.freeze_factor if s.smooth >= bar else 1.0)
        s.baseline = np.where(ok, base + a * (xs - base), s.baseline)
        s.count += int(ok.any())
        if s.calibration is not None and ok.any():
            s.calibration.observe(s.smooth, bar)
        return s.smooth, blame

    @property
    def threshold(self) -> float:
        """The threshold the next row's score is judged by."""
        if self.model is None:
            return np.inf
        cal = self.state.calibration
        return self.model.threshold if cal is None else min(self.model.threshold, cal.threshold)


def alarm_threshold(train_scores: FloatArray, c: MultivariateConfig) -> float:
    """The alarm threshold from the detector's own scores on its training rows (no labels)."""
    if c.threshold_rule == "spot":
        level = float(np.quantile(train_scores, c.spot_level))
        excess = train_scores[train_scores > level] - level
        peaks = PeaksState(
            np.array([len(train_scores)]),
            np.array([len(excess)]),
            np.array([excess.sum()]),
            np.array([np.square(excess).sum()]),
            np.array([excess.max(initial=0.0)]),
        )
        # the (1 - risk) quantile of the training scores, from the tail fitted over `level`
        tail = float(spot_threshold(peaks, c.risk, min_peaks=10)[0])
        return max(c.threshold, level + tail)
    train_q = float(np.quantile(train_scores, c.threshold_quantile))
    return max(c.threshold, float(c.threshold_margin * train_q))


def replay_thresholds(
    train_scores: FloatArray, scores: FloatArray, c: MultivariateConfig
) -> FloatArray:
    """The threshold each of `scores` met, had the detector given them after its training.

    For choosing threshold rules on recorded scores (`aiops eval smd --cv`); the same as
    `detect(...).thresholds` when the baselines do not depend on the threshold
    (freeze_factor 1) and every row has a value (a row without one is not learnt).
    """
    trained = alarm_threshold(train_scores, c)
    cal = _calibration(train_scores, c)
    if cal is None:
        return np.full(len(scores), trained)
    out = np.empty(len(scores))
    for t, score in enumerate(scores):
        out[t] = min(trained, cal.threshold)
        cal.observe(float(score), out[t])
    return out


def _calibration(train_scores: FloatArray, c: MultivariateConfig) -> RollingCalibration | None:
    if c.threshold_rule != "quantile" or c.calibration_rows == 0 or len(train_scores) == 0:
        return None
    return RollingCalibration(
        train_scores.tolist(),
        c.calibration_rows,
        c.threshold_quantile,
        c.threshold_margin,
        c.threshold,
        c.calibration_guard,
    )


def _causal_change(x: FloatArray, alpha: float) -> FloatArray:
    """|x_t - EWMA baseline of rows < t| for every training row."""
    out = np.zeros_like(x)
    base = np.where(np.isfinite(x[0]), x[0], 0.0)
    for t in range(x.shape[0]):
        row = x[t]
        ok = np.isfinite(row)
        out[t] = np.where(ok, np.abs(row - base), np.nan)
        base = np.where(ok, base + alpha * (row - base), base)
    return out
