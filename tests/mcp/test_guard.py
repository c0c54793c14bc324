"""PromQL guardrails and time arguments, as an assistant would write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastmcp.exceptions import ToolError

from aiops.mcp.guard import MAX_POINTS, parse_time, window

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_times_people_write() -> None:
    assert parse_time("now", "end", NOW) == NOW
    assert parse_time("-30m", "start", NOW) == NOW - timedelta(minutes=30)
    assert parse_time("now-2h", "start", NOW) == NOW - timedelta(hours=2)
    assert parse_time("2026-11-24T10:00:00Z", "start", NOW) == NOW - timedelta(hours=2)
    assert parse_time("2026-11-24T10:00:00", "start", NOW).tzinfo is UTC
    with pytest.raises(ToolError, match="'last tuesday' is not a time; write 'now'"):
        parse_time("last tuesday", "start", NOW)


def test_window_picks_a_step_within_the_point_limit() -> None:
    w = window("-7d", "now", None, NOW)
    assert (w.end - w.start).total_seconds() / w.step_s + 1 <= MAX_POINTS
    assert window("-1h", "now", "15s", NOW).step_s == 15
    with pytest.raises(ToolError, match="use step '606s' or more"):
        window("-7d", "now", "1m", NOW)
    assert window("-7d", "now", "606s", NOW).step_s == 606  # the advice works
    with pytest.raises(ToolError, match="must be before end"):
        window("now", "-1h", None, NOW)
    with pytest.raises(ToolError, match="is in the future"):
        window("2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z", None, NOW)
    with pytest.raises(ToolError, match="'fast' is not a duration"):
        window("-1h", "now", "fast", NOW)
