"""Causal streaming detector for many univariate series at once (golden signals).

Each call to `step` takes one new sample per series (shape [n_series]) and returns one score per
series in [0, 1]; the score of sample t depends only on samples <= t. All state lives in
`UnivariateState` (plain numpy arrays), so a detector can be checkpointed and resumed.

Why these parts:
* level: an EWMA baseline with a robust (clipped) variance, so one spike does not inflate the
  spread and hide the next one; a persistent level shift is flagged, then absorbed quickly.
* jump: the change from the previous sample against the typical change, which catches spikes and
  steps in noisy-but-smooth series much earlier than the level residual does.
* season: optional per-phase baseline (period in samples) so a daily cycle is not an anomaly.
* likelihood: like HTM's anomaly likelihood, a short average of the raw surprise is compared with
  its long-run distribution, which makes scores comparable across very different series and turns
  "a lot more surprising than usual lately" into a calibrated number.
* refractory: after an alarm the score is damped for a while, since one incident is one alarm.
NaN/Inf inputs leave the state untouched and score 0; counters can be turned into rates with
reset handling before scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class UnivariateConfig:
    level_alpha: float = 0.02
    var_alpha: float = 0.01
    jump_alpha: float = 0.01
    season: int = 0  # samples per season (e.g. 288 for a daily cycle at 5-minute steps); 0 = none
    season_alpha: float = 0.1
    warmup: int = 20
    clip: float = 4.0
    lik_short: float = 0.25
    lik_long: float = 0.002
    lik_warmup: int = 100
    refractory: int = 0
    refractory_level: float = 0.5
    refractory_threshold: float = 0.5
    counter: bool = False
    direction: int = 0  # +1 only increases matter, -1 only decreases, 0 both
    rel_floor: float = 1e-3  # spread floor relative to the series' typical magnitude
    w_level: float = 1.0
    score_scale: float = 5.0
    w_jump: float = 1.0
    w_season: float = 1.0


@dataclass
class UnivariateState:
    count: IntArray
    last: FloatArray
    last_raw: FloatArray
    level: FloatArray
    var: FloatArray
    jump_var: FloatArray
    magnitude: FloatArray
    season_mean: FloatArray  # [n, season] (or [n, 0])
    season_var: FloatArray
    lik_short: FloatArray
    lik_mean: FloatArray
    lik_var: FloatArray
    quiet: IntArray

    @classmethod
    def new(cls, n: int, season: int = 0) -> UnivariateState:
        z = np.zeros(n)
        return cls(
            count=np.zeros(n, dtype=np.int64),
            last=np.full(n, np.nan),
            last_raw=np.full(n, np.nan),
            level=z.copy(),
            var=z.copy(),
            jump_var=z.copy(),
            magnitude=z.copy(),
            season_mean=np.full((n, season), np.nan),
            season_var=np.zeros((n, season)),
            lik_short=z.copy(),
            lik_mean=z.copy(),
            lik_var=np.ones(n),
            quiet=np.zeros(n, np.int64),
        )


@dataclass
class UnivariateDetector:
    n_series: int
    config: UnivariateConfig = field(default_factory=UnivariateConfig)
    state: UnivariateState = field(init=False)
    t: int = 0

    def __post_init__(self) -> None:
        self.state = UnivariateState.new(self.n_series, self.config.season)

    def score(self, values: npt.ArrayLike) -> FloatArray:
        """Score a batch [T, n_series] in time order; returns scores [T, n_series]."""
        x = np.asarray(values, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        out = np.empty_like(x)
        for t in range(x.shape[0]):
            out[t] = self.step(x[t])
        return out

    def step(self, values: npt.ArrayLike) -> FloatArray:
        c, s = self.config, self.state
        x = np.asarray(values, dtype=np.float64).reshape(self.n_series)
        if c.counter:
            x = _counter_to_increase(x, s)
        ok = np.isfinite(x)
        xs = np.where(ok, x, 0.0)
        first = ok & (s.count == 0)
        # Seed the baselines with the first sample so cold start does not look like a jump.
        s.level = np.where(first, xs, s.level)
        s.last = np.where(first, xs, s.last)
        s.magnitude = np.where(first, np.abs(xs), s.magnitude)

        floor = c.rel_floor * s.magnitude + 1e-9
        sd = np.sqrt(s.var) + floor
        e_level = (xs - s.level) / sd
        jsd = np.sqrt(s.jump_var) + floor
        e_jump = (xs - s.last) / jsd
        raw = c.w_level * _directed(e_level, c.direction)
        raw = np.maximum(raw, c.w_jump * _directed(e_jump, c.direction))
        if c.season:
            phase = self.t % c.season
            sm = s.season_mean[:, phase]
            have = np.isfinite(sm)
            ssd = np.sqrt(s.season_var[:, phase]) + floor
            e_season = np.where(have, (xs - np.where(have, sm, 0.0)) / ssd, 0.0)
            # A seasonal series is only surprising if it leaves both its level and its cycle.
            raw = np.where(
                have, np.minimum(raw, c.w_season * _directed(e_season, c.direction)), raw
            )
        warm = s.count >= c.warmup
        raw = np.where(ok & warm, raw, 0.0)

        self.raw = raw
        # Anomaly likelihood over the raw surprise.
        s.lik_short = np.where(ok, s.lik_short + c.lik_short * (raw - s.lik_short), s.lik_short)
        lsd = np.sqrt(s.lik_var) + 1e-3
        z = (s.lik_short - s.lik_mean) / lsd
        score = np.maximum(z, 0.0) / (np.maximum(z, 0.0) + c.score_scale)
        score = np.where(ok & (s.count >= c.lik_warmup), score, 0.0)
        upd = ok & warm
        d = raw - s.lik_mean
        lik_a = np.maximum(c.lik_long, 1.0 / np.maximum(s.count - c.warmup + 2.0, 1.0))
        s.lik_mean = np.where(upd, s.lik_mean + lik_a * d, s.lik_mean)
        s.lik_var = np.where(upd, (1 - lik_a) * (s.lik_var + lik_a * d * d), s.lik_var)

        if c.refractory:
            damped = s.quiet > 0
            score = np.where(damped, score * c.refractory_level, score)
            s.quiet = np.maximum(s.quiet - 1, 0)
            s.quiet = np.where(score >= c.refractory_threshold, c.refractory, s.quiet)

        # Update baselines after scoring (causal), with clipped residuals for robustness.
        cnt = s.count.astype(np.float64)
        a_lvl = np.maximum(c.level_alpha, 1.0 / (cnt + 1.0))
        a_var = np.maximum(c.var_alpha, 1.0 / (cnt + 1.0))
        r = np.clip(xs - s.level, -c.clip * sd, c.clip * sd)
        s.level = np.where(ok, s.level + a_lvl * r, s.level)
        s.var = np.where(ok & ~first, (1 - a_var) * (s.var + a_var * r * r), s.var)
        jr = np.clip(xs - s.last, -c.clip * jsd, c.clip * jsd)
        s.jump_var = np.where(ok & ~first, (1 - a_var) * (s.jump_var + a_var * jr * jr), s.jump_var)
        s.magnitude = np.where(ok, s.magnitude + a_var * (np.abs(xs) - s.magnitude), s.magnitude)
        if c.season:
            phase = self.t % c.season
            sm = s.season_mean[:, phase]
            sv = s.season_var[:, phase]
            have = np.isfinite(sm)
            ssd = np.sqrt(sv) + floor
            sr = np.clip(xs - np.where(have, sm, xs), -c.clip * ssd, c.clip * ssd)
            new_m = np.where(have, sm + c.season_alpha * sr, xs)
            new_v = np.where(have, (1 - c.season_alpha) * (sv + c.season_alpha * sr * sr), s.var)
            s.season_mean[:, phase] = np.where(ok, new_m, sm)
            s.season_var[:, phase] = np.where(ok, new_v, sv)
        s.last = np.where(ok, xs, s.last)
        s.count = s.count + ok
        self.t += 1
        return score


def _directed(z: FloatArray, direction: int) -> FloatArray:
    if direction > 0:
        return np.maximum(z, 0.0)
    if direction < 0:
        return np.maximum(-z, 0.0)
    return np.abs(z)


def _counter_to_increase(x: FloatArray, s: UnivariateState) -> FloatArray:
    """Turn a monotonic counter into per-step increases; a drop means the counter reset."""
    prev = s.last_raw
    inc = x - prev
    inc = np.where(inc < 0, x, inc)  # after a reset the counter restarted from zero
    ok = np.isfinite(x)
    s.last_raw = np.where(ok, x, prev)
    return np.where(ok & np.isfinite(prev), inc, np.nan)
