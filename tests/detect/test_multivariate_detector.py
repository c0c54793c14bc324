"""The multivariate detector flags a group's anomaly and blames the right metrics."""

from __future__ import annotations

import numpy as np
import pytest

from aiops.detect.multivariate import MultivariateDetector, replay_thresholds
from aiops.detect.presets import MULTIVARIATE_CONFIG


def machine(n: int, seed: int) -> np.ndarray:
    """Eight correlated metrics in [0, 1], like a node's scaled metrics."""
    rng = np.random.default_rng(seed)
    load = 0.5 + 0.2 * np.sin(np.arange(n) / 50.0)
    cols = [load + rng.normal(0, 0.02, n) for _ in range(4)]
    cols += [rng.uniform(0.2, 0.3, n) for _ in range(4)]
    return np.clip(np.column_stack(cols), 0, 1)


def test_injected_fault_is_detected_and_its_metrics_blamed() -> None:
    train = machine(3000, 1)
    test = machine(2000, 2)
    test[1200:1260, [2, 6]] += 0.4
    det = MultivariateDetector(MULTIVARIATE_CONFIG)
    det.fit(train)
    found = det.detect(test)
    alarm, blame = found.alarms, found.blame
    assert alarm[1200:1260].mean() > 0.8
    assert alarm[:1150].mean() < 0.01
    top2 = set(np.argsort(-blame[1200:1260].mean(axis=0))[:2].tolist())
    assert top2 == {2, 6}


def test_scores_are_causal() -> None:
    train, test = machine(1000, 3), machine(800, 4)
    a = MultivariateDetector(MULTIVARIATE_CONFIG)
    a.fit(train)
    s1, _ = a.score(test)
    changed = test.copy()
    changed[500:] = 5.0
    b = MultivariateDetector(MULTIVARIATE_CONFIG)
    b.fit(train)
    s2, _ = b.score(changed)
    np.testing.assert_array_equal(s1[:500], s2[:500])


def test_missing_values_do_not_crash_or_alarm() -> None:
    train, test = machine(2000, 5), machine(1000, 6)
    test[300:320] = np.nan
    test[400, 3] = np.inf
    det = MultivariateDetector(MULTIVARIATE_CONFIG)
    det.fit(train)
    found = det.detect(test)
    assert np.all(np.isfinite(found.scores))
    assert np.all(np.isfinite(found.blame))
    assert not np.any(found.alarms)


def test_scoring_before_fit_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        MultivariateDetector().step(np.zeros(3))


def test_the_bar_follows_a_quieter_machine_down_and_never_rises_over_training() -> None:
    train = machine(6000, 7)
    train[:1500, 4:] = np.random.default_rng(9).uniform(0.15, 0.35, (1500, 4))  # a restless day
    det = MultivariateDetector(MULTIVARIATE_CONFIG)
    det.fit(train)
    assert det.model is not None
    trained = det.model.threshold
    quiet = det.detect(machine(6000, 8)).thresholds
    assert quiet[-1] < trained
    noisier = machine(6000, 10)
    noisier[:, 4:] = np.random.default_rng(11).uniform(0.1, 0.4, (6000, 4))
    det.reset()
    found = det.detect(noisier)
    assert found.thresholds.max() <= trained
    assert found.alarms.mean() > 0.01  # the drift alarms: it is not learnt away


def test_thresholds_replayed_on_recorded_scores_are_the_detectors() -> None:
    train, test = machine(2000, 10), machine(3000, 11)
    test[:, :4] += np.random.default_rng(12).normal(0, 0.03, (3000, 4))
    test[2000:2040, 2] += 0.4
    det = MultivariateDetector(MULTIVARIATE_CONFIG)
    det.fit(train)
    found = det.detect(test)
    replayed = replay_thresholds(det.train_scores, found.scores, MULTIVARIATE_CONFIG)
    np.testing.assert_array_equal(found.thresholds, replayed)
    det.reset()  # the calibration starts over from the training scores
    assert det.model is not None
    assert det.threshold == det.model.threshold == found.thresholds[0]
