"""Backfill: TSDB blocks covering the requested history, made by promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from aiops_lab.backfill import BackfillError, backfill
from aiops_lab.sim.shop import Shop

from tests.lab.fake_cluster import FakeCluster

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed"
)


@needs_promtool
def test_backfill_writes_blocks_spanning_the_history(tmp_path: Path) -> None:
    end = 1_750_000_020.0  # a multiple of the step
    r = backfill(tmp_path / "data", end=end, days=0.1, step=30, rps=20, seed=3)
    assert r.end == end
    assert r.start == end - 0.1 * 86400
    assert r.blocks >= 2  # 2.4 h cannot fit in one 2-hour block window
    listing = subprocess.run(
        ["promtool", "tsdb", "list", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [ln.split() for ln in listing.splitlines()[1:] if ln.strip()]
    mint = min(int(row[1]) for row in rows) / 1000
    maxt = max(int(row[2]) for row in rows) / 1000
    assert mint == r.start
    assert end - 60 <= maxt <= end
    assert sum(int(row[4]) for row in rows) == r.samples
    assert not list((tmp_path / "data").glob("*.om"))  # no leftovers


@needs_promtool
def test_live_counters_continue_from_the_history(tmp_path: Path) -> None:
    r = backfill(tmp_path / "data", end=1_750_000_000.0, days=0.02, step=60)
    cluster = FakeCluster(at=1_750_000_000.0)
    live = Shop(cluster)
    live.continue_from(r.shop)

    def frontend_total(shop: Shop) -> float:
        return sum(
            v
            for f in shop.families()
            if f.name == "istio_requests_total"
            for _, lb, v in f.samples
            if ("destination_workload", "frontend") in lb
        )

    history_total = frontend_total(r.shop)
    assert history_total > 50 * 0.02 * 86400 * 0.5
    for _ in range(3):
        cluster.advance(1)
        live.step(cluster.at)
    assert frontend_total(live) > history_total


def test_missing_promtool_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackfillError, match="promtool not found"):
        backfill(tmp_path, days=0.01, promtool="/nonexistent/promtool")
