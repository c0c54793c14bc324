"""The multivariate detector flags a group's anomaly and blames the right metrics."""

from __future__ import annotations

import numpy as np
import pytest

from aiops.detect.multivariate import MultivariateDetector
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
    scores, blame = det.score(test)
    alarm = scores >= det.threshold
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
    scores, blame = det.score(test)
    assert np.all(np.isfinite(scores))
    assert np.all(np.isfinite(blame))
    assert not np.any(scores >= det.threshold)


def test_scoring_before_fit_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        MultivariateDetector().step(np.zeros(3))
