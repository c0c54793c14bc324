"""The multivariate threshold re-calibrates on the detector's own quiet scores, never on alarms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aiops.detect.calibration import RollingCalibration
from aiops.detect.multivariate import alarm_threshold, replay_thresholds
from aiops.detect.presets import MULTIVARIATE_CONFIG


def quiet(n: int, level: float, seed: int) -> np.ndarray:
    return level * np.random.default_rng(seed).uniform(0.5, 1.0, n)


def test_first_threshold_is_the_training_rule_on_the_last_rows() -> None:
    train = np.r_[quiet(5000, 3.0, 1), quiet(4320, 0.5, 2)]
    c = MULTIVARIATE_CONFIG
    cal = RollingCalibration(
        train, c.calibration_rows, c.threshold_quantile, c.threshold_margin, c.threshold
    )
    recent = dataclasses.replace(c, calibration_rows=0)
    assert cal.threshold == pytest.approx(alarm_threshold(train[-4320:], recent))
    # the detector holds the lower of this and the rule on all its training scores
    assert replay_thresholds(train, quiet(3, 0.1, 3), c)[0] == pytest.approx(cal.threshold)
    assert alarm_threshold(train, c) > cal.threshold


def test_a_drifting_normal_recalibrates_and_old_scores_leave_the_window() -> None:
    cal = RollingCalibration(quiet(100, 1.0, 3), window=100, quantile=0.95, margin=1.5, floor=0.0)
    before = cal.threshold
    later = quiet(300, 1.3, 4)  # quiet scores a third higher than before, under the bar
    for s in later:
        cal.observe(float(s))
    # only the last 100 quiet scores count now
    assert cal.threshold == pytest.approx(1.5 * float(np.quantile(later[-100:], 0.95)))
    assert cal.threshold > 1.2 * before


def test_scores_at_or_past_the_bar_are_not_learnt() -> None:
    cal = RollingCalibration(quiet(500, 1.0, 5), window=500, quantile=0.95, margin=1.2, floor=0.5)
    bar = cal.threshold
    for _ in range(5000):  # an incident far longer than the window
        cal.observe(bar * 3)
    cal.observe(float("nan"))
    assert cal.threshold == bar


def test_the_floor_holds_when_the_scores_are_tiny() -> None:
    cal = RollingCalibration(np.zeros(50), window=50, quantile=0.95, margin=1.5, floor=1.0)
    assert cal.threshold == 1.0
    assert RollingCalibration([], window=5, quantile=0.5, margin=1.0, floor=0.7).threshold == 0.7


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="window"):
        RollingCalibration([1.0], window=0, quantile=0.9, margin=1.0, floor=0.0)
    with pytest.raises(ValueError, match="quantile"):
        RollingCalibration([1.0], window=10, quantile=95, margin=1.0, floor=0.0)


def test_without_a_window_the_training_threshold_stays() -> None:
    c = dataclasses.replace(MULTIVARIATE_CONFIG, calibration_rows=0)
    train, test = quiet(2000, 1.0, 6), quiet(500, 5.0, 7)
    thresholds = replay_thresholds(train, test, c)
    assert np.all(thresholds == alarm_threshold(train, c))


def test_the_rows_just_after_an_alarm_are_not_learnt() -> None:
    # bar = 2 x the smallest of the last three quiet scores
    cal = RollingCalibration(
        [0.5, 0.6, 0.7], window=3, quantile=0.0, margin=2.0, floor=0.0, guard=5
    )
    assert cal.threshold == 1.0
    cal.observe(1.5)  # an alarm
    for _ in range(5):  # the incident's rows just under the bar
        cal.observe(0.9)
    assert cal.threshold == 1.0
    cal.observe(0.9)  # the sixth row after the alarm is quiet again: 0.5 leaves the window
    assert cal.threshold == 1.2
    with pytest.raises(ValueError, match="guard"):
        RollingCalibration([1.0], window=10, quantile=0.9, margin=1.0, floor=0.0, guard=-1)


def test_recent_quiet_scores_lower_the_detectors_bar_and_never_raise_it() -> None:
    c = MULTIVARIATE_CONFIG
    train = np.r_[quiet(3000, 3.0, 9), quiet(6000, 0.6, 10)]  # restless, then quiet
    trained = alarm_threshold(train, dataclasses.replace(c, calibration_rows=0))
    test = quiet(6000, 0.6, 11)
    test[5000:5060] = 0.7 * trained  # a fault the training bar would miss
    bars = replay_thresholds(train, test, c)
    assert bars.max() <= trained
    assert np.all(test[5000:5060] >= bars[5000:5060])
    assert not np.any(test[:5000] >= bars[:5000])
    louder = replay_thresholds(train, quiet(6000, 5.0, 12), c)
    assert louder.max() <= trained
