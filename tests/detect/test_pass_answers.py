"""The split of a shared answer: the remembered layout gives what a fresh split gives, pass after
pass, and a new layout when the answer's series change."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from aiops.detect.catalog import build_catalog
from aiops.detect.pass_answers import AnswerReader, Renamed, read_answer
from aiops.detect.pass_types import QueryPlan

CATALOG = build_catalog()
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def istio(name: str) -> QueryPlan:
    signal = CATALOG[name]
    one = signal.model_copy(
        update={"parts": tuple(p for p in signal.parts if p.profile == "istio")}
    )
    form = one.pass_query("1m")
    assert form.shared is not None
    return QueryPlan(name, form.promql, NOW, NOW, 15.0, False, form)


def answer(workloads: list[str], scale: float) -> list[Renamed]:
    out = []
    for i, w in enumerate(workloads):
        for reporter in ("source", "destination"):
            for failed in ({}, {"aiops_failed": "1"}):
                labels = {
                    "destination_workload": w,
                    "destination_workload_namespace": "shop",
                    "reporter": reporter,
                } | failed
                value = (
                    scale * (i + 1) * (0.5 if failed else 10.0) * (2 if reporter == "source" else 1)
                )
                out.append(Renamed(labels, [1.0e9], [value]))
    return out


def rows(series: list) -> dict:  # type: ignore[type-arg]
    return {
        tuple(sorted(s.labels.items())): [v for v in s.values if not math.isnan(v)] for s in series
    }


def test_the_remembered_split_is_the_fresh_one_pass_after_pass() -> None:
    reader = AnswerReader()
    for plan in (istio("request_rate"), istio("error_ratio")):
        for workloads, scale in (
            (["cart", "checkout"], 1.0),
            (["cart", "checkout"], 3.0),  # same series, new values: the layout is reused
            (["cart", "checkout", "payment"], 2.0),  # a new workload: a new layout
            (["checkout"], 1.0),
        ):
            got = answer(workloads, scale)
            assert rows(reader.read(plan, got)) == rows(read_answer(plan, got))
    rate = rows(reader.read(istio("request_rate"), answer(["cart"], 1.0)))
    assert rate == {(("namespace", "shop"), ("workload", "cart")): [10.5]}  # destination only
    ratio = rows(reader.read(istio("error_ratio"), answer(["cart"], 1.0)))
    assert ratio[(("namespace", "shop"), ("workload", "cart"))] == [0.5 / 10.5]
