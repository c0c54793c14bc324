"""The robust per-metric scores behind the ranking."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aiops.rca import MetricsMatrix, ScoringConfig
from aiops.rca.scoring import nan_quantiles, score_metrics


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 12), st.integers(1, 6)),
        elements=st.one_of(st.floats(-1e6, 1e6), st.just(np.nan)),
    )
)
def test_quantiles_match_numpy(a: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanpercentile(a, [25, 50, 75], axis=0)
    got = np.array(nan_quantiles(a, (0.25, 0.5, 0.75)))
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-6, equal_nan=True)


def small(values: list[float]) -> MetricsMatrix:
    return MetricsMatrix.from_series([60.0 * i for i in range(len(values))], {"a_x": values})


def test_flat_baseline_does_not_give_infinite_scores() -> None:
    # A gauge stuck at 100 that moves by 1 %: notable, but not a million sigmas.
    m = small([100.0] * 10 + [101.0, 101.0, 100.0])
    s = score_metrics(m, 600.0)
    assert 0 < s.score[0] <= 1.0 / ScoringConfig().rel_floor


def test_onset_is_the_first_sample_past_the_threshold() -> None:
    m = small([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.0, 5.0, 6.0, 6.0])
    s = score_metrics(m, 360.0)
    assert s.onset[0] == 480.0
    assert s.direction[0] == 1
    assert s.baseline[0] == 1.0


def test_column_without_baseline_is_not_scored() -> None:
    m = MetricsMatrix.from_series(
        [0.0, 60.0, 120.0, 180.0, 240.0],
        {"a_x": [np.nan, np.nan, np.nan, 1.0, 9.0], "b_x": [1.0, 1.1, 0.9, 5.0, 6.0]},
    )
    s = score_metrics(m, 180.0)
    assert np.isnan(s.score[0])
    assert s.score[1] > 3


def test_onset_estimate_finds_a_multivariate_step() -> None:
    from aiops.rca.onset import estimate_onset

    rng = np.random.default_rng(0)
    times = 60.0 * np.arange(50)
    values = 10 + rng.standard_normal((50, 20))
    values[31:, :4] += 8  # four columns shift at row 31
    m = MetricsMatrix(times=times, columns=tuple(f"s{i}_m" for i in range(20)), values=values)
    assert estimate_onset(m, times[35], search_back_s=600) == times[31]
    # Nothing to search: the alarm time comes back unchanged.
    assert estimate_onset(m, times[35], search_back_s=0) == times[35]
