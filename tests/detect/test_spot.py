"""The per-series SPOT threshold: every record is news while records are rare, a fitted tail
once they are common, and the quantile it fits is the one extreme value theory predicts."""

from __future__ import annotations

import numpy as np

from aiops.detect.spot import PeaksState, spot_threshold, update_peaks


def fed(novelty: np.ndarray) -> PeaksState:
    state = PeaksState.new(novelty.shape[1])
    for row in novelty:
        update_peaks(state, row, np.isfinite(row))
    return state


def gpd_sample(shape: float, scale: float, n: int, seed: int) -> np.ndarray:
    u = np.random.default_rng(seed).random(n)
    return scale / shape * ((1 - u) ** -shape - 1)


def test_records_rarer_than_the_risk_each_alarm() -> None:
    novelty = np.zeros((1000, 1))
    novelty[[100, 400, 700], 0] = [0.5, 0.2, 0.1]  # 3 records in 1000 samples
    assert spot_threshold(fed(novelty), risk=0.01, min_peaks=10)[0] == 0.0


def test_a_series_that_sets_records_often_needs_a_record_deep_in_its_own_tail() -> None:
    rng = np.random.default_rng(1)
    novelty = np.where(rng.random((20_000, 1)) < 0.2, gpd_sample(0.2, 1.0, 20_000, 2)[:, None], 0)
    risk = 0.001
    z = spot_threshold(fed(novelty), risk=risk, min_peaks=10)[0]
    # P(novelty > z) = 0.2 * P(peak > z) should be the risk: the GPD quantile at 1 - risk / 0.2
    truth = 1.0 / 0.2 * ((risk / 0.2) ** -0.2 - 1)
    assert abs(z - truth) / truth < 0.15
    observed = float(np.mean(novelty[:, 0] > z))
    assert 0.5 * risk < observed < 2 * risk


def test_with_few_peaks_the_largest_one_is_the_bar() -> None:
    novelty = np.zeros((60, 1))
    novelty[10:15, 0] = [0.3, 0.9, 0.2, 0.4, 0.1]
    assert spot_threshold(fed(novelty), risk=0.01, min_peaks=10)[0] == 0.9


def test_gaps_are_not_samples_and_series_are_independent() -> None:
    novelty = np.zeros((100, 2))
    novelty[:50, 1] = np.nan  # the second series was away half the time
    novelty[20, 0] = 0.4
    novelty[60, :] = 0.4
    state = fed(novelty)
    assert state.samples.tolist() == [100, 50]
    assert state.peaks.tolist() == [2, 1]
