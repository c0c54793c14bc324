"""The load generator's patterns."""

from __future__ import annotations

import pytest
from aiops_lab.sim.traffic import DAY, Pattern, Spike, Traffic


def test_steady_stays_near_its_rate() -> None:
    t = Traffic(80, Pattern.STEADY, seed=1)
    rates = [t.rate(1e9 + s) for s in range(600)]
    assert sum(rates) / len(rates) == pytest.approx(80, rel=0.01)
    assert max(rates) < 80 * 1.15


def test_diurnal_passes_through_rps_at_the_anchor_and_swings_daily() -> None:
    anchor = 1_750_000_000.0
    t = Traffic(50, Pattern.DIURNAL, seed=1, anchor=anchor, jitter=0)
    assert t.rate(anchor) == pytest.approx(50)
    assert t.rate(anchor + DAY / 4) == pytest.approx(65)
    assert t.rate(anchor - DAY / 4) == pytest.approx(35)
    assert t.rate(anchor + DAY) == pytest.approx(50)


def test_spiky_has_short_bursts_and_does_not_depend_on_sampling_order() -> None:
    t = Traffic(50, Pattern.SPIKY, seed=4, jitter=0)
    seconds = range(3600)
    rates = [t.rate(1e9 + s) for s in seconds]
    burst = [r for r in rates if r > 62]
    assert 0.02 * len(rates) < len(burst) < 0.3 * len(rates)
    again = Traffic(50, Pattern.SPIKY, seed=4, jitter=0)
    assert [again.rate(1e9 + s) for s in reversed(seconds)][::-1] == rates


def test_noise_spike_and_seasonality_leave_the_daily_curve_alone() -> None:
    anchor = 1_750_000_000.0
    t = Traffic(50, Pattern.DIURNAL, seed=1, anchor=anchor, jitter=0)
    t.spikes.append(Spike(anchor + 10, 5, 2.0))
    assert t.rate(anchor + 12) == pytest.approx(
        2 * Traffic(50, Pattern.DIURNAL, anchor=anchor, jitter=0).rate(anchor + 12)
    )
    assert t.rate(anchor + 16) < 51
    t.extra_seasonality, t.seasonality_start, t.seasonality_period = 0.3, anchor, 400
    assert t.rate(anchor + 100) == pytest.approx(
        1.3 * Traffic(50, Pattern.DIURNAL, anchor=anchor, jitter=0).rate(anchor + 100)
    )
    assert t.anchor == anchor
