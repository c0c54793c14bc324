"""Range-novelty detector: a causal, vectorised streaming detector for many series at once.

Why this shape: on real operational series the moments that matter are the ones the series has
not shown before — a value, a smoothed level, or a change against the same time yesterday that
falls outside everything seen so far. Counting "how far past the known range, relative to the
range" is scale-free (scores compare across series, so one threshold serves a whole fleet), robust
to heavy tails and spikes (the range already contains the usual spikes) and cheap (a few array
operations per step). The known range slowly forgets, so a series that quietened down becomes
sensitive again, and a seasonal difference keeps a daily cycle from looking new.

`step` takes one sample per series (shape [n_series]); `score` a batch [T, n_series]. NaN/Inf
samples never update state and always score 0. Counter series can be turned into increases with
reset handling. After an alarm the series is held quiet for `refractory` samples: one incident,
one alarm.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aiops.detect.spot import PeaksState, spot_threshold, update_peaks

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# value, smoothed value, smoothed seasonal difference, slow level, volatility
N_FEATURES = 5
FEATURE_NAMES = ("value", "level", "seasonal", "slow_level", "volatility")


@dataclass(frozen=True)
class NoveltyConfig:
    smooth_alpha: float = 0.3  # EWMA weight of the smoothed level (~ a 6-sample mean)
    season_smooth_alpha: float = 0.3
    weights: tuple[float, float, float, float, float] = (0.5, 1.0, 1.0, 0.0, 0.0)
    # Weights of the features for new highs when they differ from new lows (None: `weights`):
    # a signal whose short rises are benign (load) counts only its slow level going up.
    up_weights: tuple[float, float, float, float, float] | None = None
    down_weights: tuple[float, float, float, float, float] | None = None
    slow_alpha: float = 0.02
    vol_alpha: float = 0.1
    forget: float = 0.0  # per-sample pull of the known range towards the centre
    center_alpha: float = 0.01
    scale: float = 0.1  # score = s / (s + scale), s = weighted novelty
    warmup: int = 20
    # A feature joins the score only after it has this many samples of its own: the seasonal
    # difference exists only from the second season on, and its first records are not news.
    feature_warmup: int = 0
    refractory: int = 0
    alarm_threshold: float = 0.5  # the score at which the refractory period starts
    counter: bool = False
    direction: int = 0  # +1: only new highs count, -1: only new lows, 0: both
    floor: float = 1e-9
    # Samples an alarm's pre-episode range is remembered (0: off). While an episode lasts its
    # values widen the known range, so the incident is one alarm; once the value is back
    # within the range it had before the alarm, that range (and centre) is restored, so the
    # next, perhaps smaller, incident is news again. A series that never comes back within this many
    # samples has a new normal, and keeps the range it learned.
    recover: int = 0
    # Per-series thresholds (aiops.detect.spot): > 0 is the target false-alarm rate per sample
    # and the score becomes calibrated, novelty / (novelty + the series' own SPOT threshold),
    # so alarm_threshold is 0.5 (the novelty passed the threshold); 0 keeps one constant
    # threshold on novelty / (novelty + scale) for every series.
    risk: float = 0.0
    min_peaks: int = 10  # peaks needed before the tail is fitted (the largest one until then)
    # With risk: the smallest novelty that can alarm at all, as a share of the known range (a
    # record by a hair is not news however rare records are).
    min_novelty: float = 0.0
    # With risk: nor is a record smaller than the series' usual move from one sample to the
    # next (its volatility, against its range): a wave sampled at another phase (a scrape
    # offset that moved, history backfilled on whole seconds) peaks that much higher.
    step_floor: bool = False


@dataclass
class NoveltyState:
    count: IntArray  # valid samples seen per series
    last_raw: FloatArray  # last counter value (counter mode)
    smooth: FloatArray
    season_smooth: FloatArray
    slow: FloatArray
    vol: FloatArray
    last: FloatArray
    center: FloatArray  # [N_FEATURES, n]
    lo: FloatArray  # [N_FEATURES, n]
    hi: FloatArray  # [N_FEATURES, n]
    history: FloatArray  # [n, max_period] ring buffer of past values (seasonal difference)
    period: IntArray  # samples per season per series; 0 = no seasonal feature
    quiet: IntArray
    feature_count: IntArray  # [N_FEATURES, n] valid samples seen per feature
    pre_lo: FloatArray  # [N_FEATURES, n] range before the open episode's alarm (NaN: none)
    pre_hi: FloatArray
    pre_center: FloatArray
    pre_age: IntArray  # samples since that alarm
    # the SPOT tail before that alarm (peak count, sum, sum of squares, largest): restored
    # with the range, so the episode's records do not become the series' own tail
    pre_peak_count: IntArray
    pre_peak_total: FloatArray
    pre_peak_squares: FloatArray
    pre_peak_largest: FloatArray
    # SPOT statistics of the novelty (aiops.detect.spot.PeaksState, one array each)
    peak_samples: IntArray
    peak_count: IntArray
    peak_total: FloatArray
    peak_squares: FloatArray
    peak_largest: FloatArray
    t: int = 0

    @classmethod
    def new(cls, n: int, period: IntArray) -> NoveltyState:
        width = int(period.max()) if period.size and period.max() > 0 else 0
        nan = np.full(n, np.nan)
        return cls(
            count=np.zeros(n, np.int64),
            last_raw=nan.copy(),
            smooth=nan.copy(),
            season_smooth=nan.copy(),
            slow=nan.copy(),
            vol=nan.copy(),
            last=nan.copy(),
            center=np.full((N_FEATURES, n), np.nan),
            lo=np.full((N_FEATURES, n), np.nan),
            hi=np.full((N_FEATURES, n), np.nan),
            history=np.full((n, width), np.nan),
            period=period.astype(np.int64),
            quiet=np.zeros(n, np.int64),
            feature_count=np.zeros((N_FEATURES, n), np.int64),
            pre_lo=np.full((N_FEATURES, n), np.nan),
            pre_hi=np.full((N_FEATURES, n), np.nan),
            pre_center=np.full((N_FEATURES, n), np.nan),
            pre_age=np.zeros(n, np.int64),
            pre_peak_count=np.zeros(n, np.int64),
            pre_peak_total=np.zeros(n),
            pre_peak_squares=np.zeros(n),
            pre_peak_largest=np.zeros(n),
            peak_samples=np.zeros(n, np.int64),
            peak_count=np.zeros(n, np.int64),
            peak_total=np.zeros(n),
            peak_squares=np.zeros(n),
            peak_largest=np.zeros(n),
        )

    @property
    def peaks(self) -> PeaksState:
        return PeaksState(
            self.peak_samples,
            self.peak_count,
            self.peak_total,
            self.peak_squares,
            self.peak_largest,
        )

    @peaks.setter
    def peaks(self, p: PeaksState) -> None:
        self.peak_samples, self.peak_count = p.samples, p.peaks
        self.peak_total, self.peak_squares, self.peak_largest = p.total, p.squares, p.largest


@dataclass
class NoveltyDetector:
    n_series: int
    config: NoveltyConfig = field(default_factory=NoveltyConfig)
    period: npt.ArrayLike | int = 0
    state: NoveltyState = field(init=False)
    blame: FloatArray = field(init=False)  # last per-feature novelty, [N_FEATURES, n]

    def __post_init__(self) -> None:
        per = np.broadcast_to(np.asarray(self.period, dtype=np.int64), (self.n_series,)).copy()
        if np.any(per < 0):
            raise ValueError("period must be >= 0 samples (0 disables the seasonal feature)")
        self.state = NoveltyState.new(self.n_series, per)
        self.blame = np.zeros((N_FEATURES, self.n_series))

    def grow(self, k: int, period: npt.ArrayLike | int = 0) -> None:
        """Append k new series (cold, as if never seen) without disturbing the others."""
        if k <= 0:
            return
        per = np.broadcast_to(np.asarray(period, dtype=np.int64), (k,)).copy()
        if np.any(per < 0):
            raise ValueError("period must be >= 0 samples (0 disables the seasonal feature)")
        old, new = self.state, NoveltyState.new(k, per)
        width = max(old.history.shape[1], new.history.shape[1])

        def widen(h: FloatArray) -> FloatArray:
            pad = np.full((h.shape[0], width - h.shape[1]), np.nan)
            return np.concatenate([h, pad], axis=1)

        merged: dict[str, Any] = {}
        for f in dataclasses.fields(NoveltyState):
            a, b = getattr(old, f.name), getattr(new, f.name)
            if f.name == "t":
                merged[f.name] = old.t
            elif f.name == "history":
                merged[f.name] = np.concatenate([widen(a), widen(b)], axis=0)
            else:
                merged[f.name] = np.concatenate([a, b], axis=-1)
        self.state = NoveltyState(**merged)
        self.n_series += k
        self.blame = np.zeros((N_FEATURES, self.n_series))

    def score(self, values: npt.ArrayLike) -> FloatArray:
        """Score a batch [T, n_series] (or [T] for one series) in time order."""
        x = np.asarray(values, dtype=np.float64)
        one = x.ndim == 1
        if one:
            x = x[:, None]
        if x.shape[1] != self.n_series:
            raise ValueError(f"expected {self.n_series} series per row, got {x.shape[1]}")
        out = np.empty_like(x)
        for t in range(x.shape[0]):
            out[t] = self.step(x[t])
        return out[:, 0] if one else out

    def step(
        self,
        values: npt.ArrayLike,
        allowed: npt.NDArray[np.bool_] | None = None,
        persist: npt.NDArray[np.bool_] | None = None,
    ) -> FloatArray:
        """Score one sample per series. `allowed` (optional, per series): where False the
        score stays below the alarm threshold and starts no refractory period (the caller
        judged the move too small to matter), so a later, larger move still alarms.
        `persist` (optional, per series): where True only the slow level counts this step
        (something the caller knows of explains a short departure)."""
        c, s = self.config, self.state
        x = np.asarray(values, dtype=np.float64).reshape(self.n_series)
        if c.counter:
            x = _counter_increase(x, s)
        ok = np.isfinite(x)
        xs = np.where(ok, x, 0.0)

        s.smooth = np.where(
            ok,
            np.where(np.isnan(s.smooth), xs, s.smooth + c.smooth_alpha * (xs - s.smooth)),
            s.smooth,
        )
        # Slow averages start as the running mean of what has been seen (weight 1/n until
        # that is below their own weight): started at the first sample, an average with a
        # half-hour memory would hold a cold start's first value as "normal" for half an hour.
        slow_a = np.maximum(c.slow_alpha, 1.0 / (s.count + 1))
        s.slow = np.where(
            ok, np.where(np.isnan(s.slow), xs, s.slow + slow_a * (xs - s.slow)), s.slow
        )
        usual_move = s.vol  # before this sample: its own jump is not "usual"
        jump = np.abs(xs - s.last)
        s.vol = np.where(
            ok & np.isfinite(s.last),
            np.where(np.isnan(s.vol), jump, s.vol + c.vol_alpha * (jump - s.vol)),
            s.vol,
        )
        s.last = np.where(ok, xs, s.last)
        feats = np.empty((N_FEATURES, self.n_series))
        feats[0] = xs
        feats[1] = s.smooth
        feats[2] = np.nan
        feats[3] = s.slow
        feats[4] = s.vol
        if s.history.shape[1]:
            width = s.history.shape[1]
            rows = np.arange(self.n_series)
            past = s.history[rows, (s.t - s.period) % width]
            sdiff = np.where(ok & (s.period > 0), xs - past, np.nan)
            sd_ok = np.isfinite(sdiff)
            s.season_smooth = np.where(
                sd_ok,
                np.where(
                    np.isnan(s.season_smooth),
                    sdiff,
                    s.season_smooth + c.season_smooth_alpha * (sdiff - s.season_smooth),
                ),
                s.season_smooth,
            )
            feats[2] = np.where(sd_ok, s.season_smooth, np.nan)
            s.history[:, s.t % width] = np.where(ok, xs, np.nan)

        valid = np.isfinite(feats) & ok[None, :]
        have_range = np.isfinite(s.lo)
        scored = have_range & valid & (s.feature_count >= c.feature_warmup)
        rng = np.maximum(np.where(have_range, s.hi - s.lo, 0.0), c.floor)
        above = np.where(scored, (feats - s.hi) / rng, 0.0)
        below = np.where(scored, (s.lo - feats) / rng, 0.0)
        base_w = np.asarray(c.weights, dtype=np.float64)[:, None]
        up_w = base_w if c.up_weights is None else np.asarray(c.up_weights, np.float64)[:, None]
        down_w = (
            base_w if c.down_weights is None else np.asarray(c.down_weights, np.float64)[:, None]
        )
        if persist is not None:
            slow_only = np.zeros((N_FEATURES, 1))
            slow_only[3] = 1.0
            up_w = np.where(persist[None, :], slow_only, up_w)
            down_w = np.where(persist[None, :], slow_only, down_w)
        above = np.maximum(above, 0.0) * up_w
        below = np.maximum(below, 0.0) * down_w
        if c.direction > 0:
            nov = above
        elif c.direction < 0:
            nov = below
        else:
            nov = np.maximum(above, below)
        # A flat series that moves at all has infinite novelty; cap it so scores stay ordered.
        nov = np.minimum(nov, 1e6)
        self.blame = nov
        raw = nov.max(axis=0)
        warm = ok & (s.count >= c.warmup)
        tail_before = None
        if c.risk > 0:
            peaks = s.peaks
            if c.recover:
                tail_before = (peaks.peaks.copy(), peaks.total.copy(), peaks.squares.copy(),
                               peaks.largest.copy())  # fmt: skip
            z = np.maximum(spot_threshold(peaks, c.risk, c.min_peaks), c.min_novelty)
            if c.step_floor:
                z = np.maximum(z, np.nan_to_num(usual_move / rng[0], nan=0.0))
            score = raw / (raw + z + 1e-12)
            # A move the caller judged too small to matter is no peak either: the tail is
            # learned from the moves that could have been alarms.
            learn = warm if allowed is None else warm & allowed
            update_peaks(peaks, np.where(learn, raw, 0.0), ok)
            s.peaks = peaks
        else:
            score = raw / (raw + c.scale)
        score = np.where(warm, score, 0.0)
        if allowed is not None:
            score = np.where(allowed, score, np.minimum(score, c.alarm_threshold * 0.999))

        if c.refractory:
            score = np.where(s.quiet > 0, np.minimum(score, c.alarm_threshold * 0.999), score)
            s.quiet = np.where(score >= c.alarm_threshold, c.refractory, np.maximum(s.quiet - 1, 0))

        if c.recover:
            self._recover(x, ok, score, tail_before)
        # Update the known range after scoring (causal), then let it forget a little. What a
        # known cause drives (`persist`) is not what the series does by itself: its fast
        # features do not widen their range then, so a later rise without that cause is
        # judged against the series' own range; the slow level learns it all.
        f = np.where(valid, feats, 0.0)
        learn = (
            valid
            if persist is None
            else valid & ~(persist[None, :] & (np.arange(N_FEATURES) != 3)[:, None])
        )
        s.lo = np.where(learn, np.where(have_range, np.minimum(s.lo, f), f), s.lo)
        s.hi = np.where(learn, np.where(have_range, np.maximum(s.hi, f), f), s.hi)
        s.center = np.where(
            valid,
            np.where(
                np.isnan(s.center),
                f,
                s.center + np.maximum(c.center_alpha, 1.0 / (s.feature_count + 1)) * (f - s.center),
            ),
            s.center,
        )
        if c.forget:
            s.hi = np.where(valid, s.hi - c.forget * (s.hi - s.center), s.hi)
            s.lo = np.where(valid, s.lo + c.forget * (s.center - s.lo), s.lo)
        s.count = s.count + ok
        s.feature_count = s.feature_count + valid
        s.t += 1
        return score

    def _recover(
        self,
        x: FloatArray,
        ok: npt.NDArray[np.bool_],
        score: FloatArray,
        tail_before: tuple[IntArray, FloatArray, FloatArray, FloatArray] | None,
    ) -> None:
        """Remember the range (and the SPOT tail, as it was before this sample) at an
        episode's first alarm; restore both once the value is back within that range (before
        this sample widens it); forget them after `recover` samples. The episode's records
        are learned while it lasts (one incident, one alarm: its plateau's wobbles are not
        news), but an incident is not the series' normal: kept, a climb of errors from 0 to
        0.7 raised the next threshold a thousandfold and a later fault that climbed to 0.8
        opened nothing."""
        c, s = self.config, self.state
        held = np.isfinite(s.pre_lo[0])
        with np.errstate(invalid="ignore"):
            below = x <= s.pre_hi[0]
            above = x >= s.pre_lo[0]
        back = (
            held & ok & (below if c.direction > 0 else above if c.direction < 0 else below & above)
        )
        s.lo = np.where(back, s.pre_lo, s.lo)
        s.hi = np.where(back, s.pre_hi, s.hi)
        s.center = np.where(back, s.pre_center, s.center)
        if tail_before is not None:
            s.peak_count = np.where(back, s.pre_peak_count, s.peak_count)
            s.peak_total = np.where(back, s.pre_peak_total, s.peak_total)
            s.peak_squares = np.where(back, s.pre_peak_squares, s.peak_squares)
            s.peak_largest = np.where(back, s.pre_peak_largest, s.peak_largest)
        s.pre_age = np.where(held, s.pre_age + 1, 0)
        done = back | (held & (s.pre_age > c.recover))
        start = ~held & (score >= c.alarm_threshold)
        s.pre_lo = np.where(done, np.nan, np.where(start, s.lo, s.pre_lo))
        s.pre_hi = np.where(done, np.nan, np.where(start, s.hi, s.pre_hi))
        s.pre_center = np.where(done, np.nan, np.where(start, s.center, s.pre_center))
        s.pre_age = np.where(done | start, 0, s.pre_age)
        if tail_before is not None:
            count, total, squares, largest = tail_before
            s.pre_peak_count = np.where(start, count, s.pre_peak_count)
            s.pre_peak_total = np.where(start, total, s.pre_peak_total)
            s.pre_peak_squares = np.where(start, squares, s.pre_peak_squares)
            s.pre_peak_largest = np.where(start, largest, s.pre_peak_largest)


def _counter_increase(x: FloatArray, s: NoveltyState) -> FloatArray:
    """Per-step increase of a monotonic counter; a drop means it reset and restarted from 0."""
    prev = s.last_raw
    inc = np.where(x < prev, x, x - prev)
    ok = np.isfinite(x)
    s.last_raw = np.where(ok, x, prev)
    return np.where(ok & np.isfinite(prev), inc, np.nan)
