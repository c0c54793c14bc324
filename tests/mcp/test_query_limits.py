"""query_metrics reads a bounded answer with a time limit (#14 item 11): an answer past the
byte cap is refused with what to do instead, never parsed whole, against the real Prometheus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastmcp import Client as McpClient
from fastmcp.exceptions import ToolError

from aiops.config import PrometheusSettings, Settings
from aiops.integrations.prometheus import Limits, Prometheus, PrometheusError, RangeQuery
from aiops.mcp import guard
from aiops.mcp.server import create_server
from tests.servers import MetricsTarget, PrometheusServer, scraped, wait_until


@pytest.fixture
def wide(prometheus: PrometheusServer, metrics_target: MetricsTarget) -> str:
    """200 series of one metric on the real Prometheus: an answer of about 30 KB."""
    for i in range(200):
        metrics_target.values[f'aiops_test_wide{{shard="{i}"}}'] = float(i)
    wait_until(lambda: scraped(prometheus.url, 'aiops_test_wide{shard="199"}'), 15, "a scrape")
    return prometheus.url


async def test_an_answer_past_the_cap_is_refused_with_what_to_do(
    wide: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(prometheus=PrometheusSettings(url=wide))
    async with McpClient[Any](create_server(settings)) as mcp:
        whole = await mcp.call_tool("query_metrics", {"promql": "aiops_test_wide"})
        assert len(whole.structured_content["series"]) == guard.MAX_SERIES  # type: ignore[index]
        assert "200 or more series matched" in whole.structured_content["truncated"]  # type: ignore[index]
        monkeypatch.setattr(guard, "MAX_ANSWER_BYTES", 4096)
        with pytest.raises(ToolError, match=r"larger than .*aggregate \(sum by, topk\)"):
            await mcp.call_tool("query_metrics", {"promql": "aiops_test_wide"})
        small = await mcp.call_tool("query_metrics", {"promql": "sum(aiops_test_wide)"})
        assert small.structured_content is not None


def test_the_cap_stops_reading_and_the_time_limit_reaches_prometheus(wide: str) -> None:
    prom = Prometheus(PrometheusSettings(url=wide))
    now = datetime.now(UTC)
    with pytest.raises(PrometheusError, match=r"larger than 1 KiB"):
        prom.fetch(RangeQuery("aiops_test_wide", now, now, 0), Limits(max_bytes=1024))
    assert len(prom.fetch(RangeQuery("aiops_test_wide", now, now, 0), Limits(max_bytes=1 << 20)))
    # A tiny time limit: Prometheus' own `timeout` refuses, or (on a loaded machine) the read
    # timeout fires first; either way the query stops and says why.
    heavy = RangeQuery("count_over_time(aiops_test_wide[1h])", now - timedelta(hours=1), now, 1.0)
    with pytest.raises(PrometheusError, match=r"timeout|did not answer within"):
        prom.fetch(heavy, Limits(timeout_s=0.000001))
