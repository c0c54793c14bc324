"""Behaviour of the streaming univariate detector that a user of the alarms would notice."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from aiops.detect.novelty import NoveltyConfig, NoveltyDetector
from aiops.detect.presets import NOVELTY_CONFIG, NOVELTY_THRESHOLD

THR = NOVELTY_THRESHOLD


def noisy(n: int, seed: int = 0, level: float = 100.0, sd: float = 2.0) -> np.ndarray:
    """Bounded noise: once its range has been seen, nothing in it is new."""
    return level + np.random.default_rng(seed).uniform(-2 * sd, 2 * sd, n)


def alarms(x: np.ndarray, period: int = 0, cfg: NoveltyConfig = NOVELTY_CONFIG) -> np.ndarray:
    det = NoveltyDetector(1, cfg, period=period)
    return np.flatnonzero(det.score(x) >= THR)


def test_spike_raises_an_alarm_at_the_spike_and_noise_records_stay_rare() -> None:
    x = noisy(3000)
    x[2500] += 60.0
    det = NoveltyDetector(1, NOVELTY_CONFIG)
    s = det.score(x)
    hits = np.flatnonzero(s >= THR)
    assert 2500 in hits
    assert int(np.argmax(s)) == 2500
    # Bounded noise sets a new record now and then (each is news while records are rarer
    # than the risk); they thin out as the range fills in.
    noise = hits[(hits > 600) & (hits < 2500)]
    assert len(noise) <= 0.005 * 1900
    assert np.sum(noise < 1500) >= np.sum(noise >= 1500)


def test_level_shift_alarms_once_then_becomes_the_new_normal() -> None:
    x = noisy(3000)
    x[2000:] += 40.0
    hits = alarms(x)
    assert hits[(hits >= 2000)].min() <= 2002
    # The new level is normal from then on: no more alarms than the same noise raises anyway.
    unshifted = alarms(noisy(3000))
    assert np.sum(hits > 2300) <= np.sum(unshifted > 2300) + 1


def test_daily_cycle_is_not_an_anomaly_but_an_off_phase_value_is() -> None:
    period = 288
    t = np.arange(period * 12)
    x = 50 + 40 * np.sin(2 * np.pi * t / period) + np.random.default_rng(1).uniform(-2, 2, t.size)
    quiet = alarms(x, period)
    # Nine more cycles of a steady daily pattern: at most a stray noise record every other day.
    assert np.sum(quiet > 3 * period) <= 5
    y = x.copy()
    start = 10 * period + 60  # near the peak of the cycle, hold a value from its trough
    y[start : start + 30] = 15.0
    hits = alarms(y, period)
    assert np.any((hits >= start) & (hits < start + 30))


def test_score_of_sample_t_uses_only_samples_up_to_t() -> None:
    x = noisy(1500, seed=3)
    full = NoveltyDetector(1, NOVELTY_CONFIG, period=100).score(x)
    y = x.copy()
    y[1000:] = 1e6  # a different future must not change the past scores
    changed = NoveltyDetector(1, NOVELTY_CONFIG, period=100).score(y)
    np.testing.assert_array_equal(full[:1000], changed[:1000])


def test_nan_inf_and_gaps_never_crash_and_never_alarm_by_themselves() -> None:
    clean = noisy(2000, seed=4)
    x = clean.copy()
    x[700:900] = np.nan
    x[1200] = np.inf
    x[1300] = -np.inf
    s = NoveltyDetector(1, NOVELTY_CONFIG, period=50).score(x)
    assert np.all(np.isfinite(s))
    assert np.all(s[~np.isfinite(x)] == 0.0)
    # No alarm just after a gap that the complete series does not raise there too.
    baseline = alarms(clean, 50)
    for end in (900, 1201, 1301):
        after = np.flatnonzero(s[end : end + 5] >= THR) + end
        assert all(np.any(np.abs(baseline - a) <= 2) for a in after), (end, after)


def test_counter_reset_is_not_an_anomaly() -> None:
    inc = np.random.default_rng(5).integers(15, 26, 2000).astype(float)
    counter = np.cumsum(inc)
    counter[1500:] = np.cumsum(inc[1500:])  # process restarted: counter starts again from zero
    cfg = NoveltyConfig(counter=True)
    det = NoveltyDetector(1, cfg)
    s = det.score(counter)
    assert not np.any(s[300:] >= THR)
    # A real burst in the increase is still seen.
    counter2 = counter.copy()
    counter2[1800:] += 2000.0
    s2 = NoveltyDetector(1, cfg).score(counter2)
    assert s2[1800] >= THR


def test_gaussian_noise_false_alarm_rate_is_low() -> None:
    # Unbounded noise keeps setting small records; few of them may reach the alarm threshold.
    x = np.random.default_rng(9).normal(0.0, 1.0, (5000, 20))
    s = NoveltyDetector(20, NOVELTY_CONFIG).score(x)
    rate = float(np.mean(s[1000:] >= THR))
    assert rate < 0.002


def test_cold_start_scores_zero_until_warm() -> None:
    x = np.r_[np.ones(5), 1000.0, np.ones(30)]
    s = NoveltyDetector(1, NOVELTY_CONFIG).score(x)
    assert np.all(s[: NOVELTY_CONFIG.warmup] == 0.0)


def test_flat_series_then_any_move_is_an_alarm() -> None:
    x = np.full(500, 45.0)
    x[400] = 46.0
    assert 400 in alarms(x)


def test_many_series_at_once_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (800, 7)).cumsum(axis=0)
    x[500, 3] += 50
    periods = np.array([0, 24, 0, 48, 12, 0, 24])
    batch = NoveltyDetector(7, NOVELTY_CONFIG, period=periods).score(x)
    for j in range(7):
        single = NoveltyDetector(1, NOVELTY_CONFIG, period=int(periods[j])).score(x[:, j])
        np.testing.assert_allclose(batch[:, j], single)


def test_state_checkpoint_resumes_identically() -> None:
    x = noisy(1200, seed=7)[:, None].repeat(3, axis=1)
    det = NoveltyDetector(3, NOVELTY_CONFIG, period=24)
    first = det.score(x[:600])
    saved = copy.deepcopy(det.state)
    rest = det.score(x[600:])
    again = NoveltyDetector(3, NOVELTY_CONFIG, period=24)
    again.state = saved
    np.testing.assert_array_equal(again.score(x[600:]), rest)
    assert first.shape == (600, 3)


def test_direction_up_ignores_drops() -> None:
    x = noisy(1500, seed=8)
    x[1000] -= 80
    x[1200] += 80
    cfg = NoveltyConfig(direction=1, refractory=0)
    hits = alarms(x, cfg=cfg)
    assert 1200 in hits
    assert 1000 not in hits


def test_wrong_width_is_a_clear_error() -> None:
    det = NoveltyDetector(3)
    with pytest.raises(ValueError, match="expected 3 series"):
        det.score(np.zeros((10, 2)))


def test_live_a_wave_read_at_another_phase_sets_no_record_but_a_rise_past_its_step_does() -> None:
    """A live series is a rate read at the scrape times of the moment: the same wave read half
    a sample later (a scrape offset that moved) peaks a hair above every sample before. That
    is no news live (step_floor); a rise by more than the wave's usual step still is."""
    from aiops.detect.presets import LIVE_NOVELTY_CONFIG

    t = np.arange(3000, dtype=np.float64)
    phase = np.where(t < 2000, 0.5, 0.0)  # the history read half a sample off the peaks
    x = 0.02 + 0.01 * np.sin(2 * np.pi * (t + phase) / 120)
    assert x[2000:].max() > x[:2000].max()  # records by a hair
    assert len(alarms(x[:2540], cfg=NOVELTY_CONFIG)) > 0  # without the floor: each is news
    assert len(alarms(x[:2540], cfg=LIVE_NOVELTY_CONFIG)) == 0
    x[2540:2560] += 0.004  # at a peak: a fifth of the range past it, ~12x the usual step
    assert 2540 <= alarms(x, cfg=LIVE_NOVELTY_CONFIG)[0] < 2560
