"""The random walk settles on the deepest anomalous service."""

from __future__ import annotations

import pytest

from aiops.rca.topology import random_walk_scores


def test_walk_prefers_the_anomalous_callee_at_the_end_of_the_chain() -> None:
    services = ["web", "api", "db", "cache"]
    edges = [("web", "api"), ("api", "db"), ("api", "cache")]
    # Everything on the path is anomalous (propagation); the cache is healthy.
    scores = random_walk_scores(services, edges, {"web": 5.0, "api": 5.0, "db": 4.0, "cache": 0.1})
    assert max(scores, key=lambda s: scores[s]) == "db"
    assert scores["cache"] < scores["web"]
    assert sum(scores.values()) == pytest.approx(1.0)


def test_no_usable_edge_gives_nothing() -> None:
    assert random_walk_scores(["a"], [("a", "a"), ("x", "y")], {"a": 1.0}) == {}
