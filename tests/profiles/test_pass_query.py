"""The detection pass's form of each signal (`Signal.pass_query`: the PromQL without its label
renames, renamed in Python by `aiops.detect.pass_answers`) answers exactly what the signal's
own PromQL answers, for every profile's signals, in every state of tests/profiles/conftest.py
(present, never existed, gone stale, the crash loop), over the whole history."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from aiops.detect.pass_answers import Renamed, canonical_series, read_answer
from aiops.detect.pass_types import QueryPlan, SeriesLike
from tests.profiles.conftest import HISTORY_S, STEP, States
from tests.profiles.test_signal_states import PROFILES, live

SHARED = {"istio"}  # profiles whose request signals share one answer in the pass


def answer(series: list[SeriesLike]) -> dict[frozenset[tuple[str, str]], list[tuple[float, float]]]:
    out = {}
    for s in series:
        key = frozenset(s.labels.items())
        assert key not in out, f"two series with labels {dict(s.labels)}"
        out[key] = [
            (t, v) for t, v in zip(s.timestamps, s.values, strict=True) if not math.isnan(v)
        ]
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_the_pass_query_answers_what_the_signal_does(states: States, profile: str) -> None:
    prom = states.prometheus()
    start = datetime.fromtimestamp(states.end - HISTORY_S + 120, UTC)
    end = datetime.fromtimestamp(states.end, UTC)
    renamed = shared = 0
    for signal in live(states, profile).signals:
        form = signal.pass_query("1m")
        renamed += bool(form.labels)
        shared += form.shared is not None
        want = answer(prom.query_range(signal.render(window="1m"), start, end, STEP))
        plan = QueryPlan(signal.name, form.promql, start, end, STEP, False, form)
        got = answer(read_answer(plan, prom.query_range(form.promql, start, end, STEP)))
        assert got.keys() == want.keys(), signal.name
        for key, points in want.items():
            assert [t for t, _ in got[key]] == [t for t, _ in points], (signal.name, key)
            assert [v for _, v in got[key]] == pytest.approx([v for _, v in points]), signal.name
    # The profile's own signals name their workloads with the exporter's labels (the base's
    # kube-state-metrics ones need no renaming).
    assert renamed >= 3
    if profile in SHARED:
        assert shared == 2  # request_rate and error_ratio from one answer


def test_series_that_meet_under_one_name_keep_the_largest_value() -> None:
    a = Renamed({"destination_workload": "cart", "reporter": "source"}, [1.0, 2.0], [0.1, math.nan])
    b = Renamed(
        {"destination_workload": "cart", "reporter": "destination"},
        [1.0, 2.0, 3.0],
        [0.3, 0.2, math.nan],
    )
    c = Renamed({"reporter": "source"}, [1.0], [5.0])  # no workload label: the label is left out
    [cart, other] = canonical_series([a, b, c], [("workload", "destination_workload")])
    assert cart.labels == {"workload": "cart"}
    assert list(cart.timestamps) == [1.0, 2.0, 3.0]
    assert cart.values[:2] == [0.3, 0.2] and math.isnan(cart.values[2])
    assert other.labels == {} and list(other.values) == [5.0]
