"""The detection pass core: query results in, one Anomaly per incident out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from aiops.detect.catalog import build_catalog
from aiops.detect.tracker import SignalTracker
from aiops.domain.models import Direction

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def feed(tracker: SignalTracker, matrix: np.ndarray, names: list[str], start: int = 0):
    found = []
    for t, row in enumerate(matrix):
        pts = [
            ({"destination_workload": n, "destination_workload_namespace": "shop"}, v)
            for n, v in zip(names, row, strict=True)
            if not np.isnan(v)
        ]
        found += tracker.observe(T0 + timedelta(seconds=15 * (t + start)), pts)
    return found


def test_one_anomaly_per_incident_for_the_right_series() -> None:
    rng = np.random.default_rng(0)
    names = ["cart", "checkout", "frontend"]
    x = 0.01 + rng.uniform(0, 0.002, (2000, 3))  # about 6 hours of history at 15 s
    x[1500:1560, 1] = 0.2  # checkout's error ratio jumps and stays up for 15 minutes
    tracker = SignalTracker(build_catalog()["error_ratio"])
    found = feed(tracker, x, names)
    fault = T0 + timedelta(seconds=15 * 1500)
    # One anomaly for the whole 15-minute incident, and nothing else around it (the detector
    # may still flag a rare record of its noise hours earlier; its false alarm rate is tested
    # in test_novelty_detector).
    near = [a for a in found if a.start >= fault - timedelta(minutes=30)]
    assert len(near) == 1
    a = near[0]
    assert a.series["destination_workload"] == "checkout"
    assert a.entity == "checkout"
    assert a.direction is Direction.UP
    assert a.start == T0 + timedelta(seconds=15 * 1500)
    assert a.baseline is not None
    assert a.baseline < 0.02 < a.value
    assert "istio_requests_total" in a.query
    assert a.evidence_window == (a.start - timedelta(seconds=300), a.start)


def test_good_news_in_the_other_direction_is_not_an_anomaly() -> None:
    rng = np.random.default_rng(1)
    x = 0.05 + rng.uniform(0, 0.005, (1500, 1))
    x[1200:, 0] = 0.0  # errors vanish
    tracker = SignalTracker(build_catalog()["error_ratio"])
    found = feed(tracker, x, ["cart"])
    assert all(a.direction is Direction.UP for a in found)
    assert not [a for a in found if a.start >= T0 + timedelta(seconds=15 * 1200)]
    # The same drop on a signal where both directions matter is reported.
    both = SignalTracker(build_catalog()["request_rate"])
    drops = [a for a in feed(both, x, ["cart"]) if a.start >= T0 + timedelta(seconds=15 * 1200)]
    assert [a.direction for a in drops] == [Direction.DOWN]


def test_series_come_and_go_and_gaps_never_alarm() -> None:
    rng = np.random.default_rng(2)
    x = 100 + rng.uniform(-5, 5, (2500, 2))
    x[:300, 1] = np.nan  # second workload deployed later
    x[1400:1450, 0] = np.nan  # first workload's series missing for a while
    x[1500, 0] = np.inf
    x[1600, 1] = np.nan
    tracker = SignalTracker(build_catalog()["request_rate"])
    found = feed(tracker, x, ["a", "b"])
    # Every alarm raised is one the same series without gaps raises too.
    clean = 100 + np.random.default_rng(2).uniform(-5, 5, (2500, 2))
    clean[:300, 1] = np.nan
    expected = feed(SignalTracker(build_catalog()["request_rate"]), clean, ["a", "b"])
    assert {(a.start, a.entity) for a in found} <= {(a.start, a.entity) for a in expected}
    assert not [a for a in found if a.start >= T0 + timedelta(seconds=15 * 1400)]
    assert tracker.detector.n_series == 2
