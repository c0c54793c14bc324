"""The bulk query path of the detection pass (httpx, POST, concurrent) against real Prometheus."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from aiops.config import PrometheusSettings
from aiops.integrations.prometheus import Prometheus, PrometheusError, RangeQuery
from tests.servers import MetricsTarget, PrometheusServer, free_port, scraped, wait_until


@pytest.fixture
def prom(prometheus: PrometheusServer) -> Iterator[Prometheus]:
    client = Prometheus(PrometheusSettings(url=prometheus.url, timeout_s=5))
    try:
        yield client
    finally:
        client.close()


def test_instant_and_range_answers_line_up_with_the_grid(
    prom: Prometheus, prometheus: PrometheusServer, metrics_target: MetricsTarget
) -> None:
    metrics_target.values['aiops_test_bulk{shard="a"}'] = 7.0
    metrics_target.values['aiops_test_bulk{shard="b"}'] = 9.0
    wait_until(lambda: scraped(prometheus.url, 'aiops_test_bulk{shard="b"}'), 15, "a scrape")
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    got = prom.fetch(RangeQuery("aiops_test_bulk", now, now, 1.0))
    assert sorted((s.labels["shard"], s.values) for s in got) == [("a", [7.0]), ("b", [9.0])]
    assert all(s.timestamps == [now.timestamp()] for s in got)

    [up] = prom.fetch(RangeQuery("aiops_test_up", now - timedelta(seconds=4), now, 1.0))
    assert up.timestamps == [now.timestamp() - k for k in range(4, -1, -1)][-len(up.timestamps) :]
    assert set(up.values) == {1.0}
    # Queries longer than a URL may be are fine: they are POSTed.
    long = " or ".join(f'aiops_test_bulk{{shard="{i}"}}' for i in range(400))
    assert prom.fetch(RangeQuery(long + " or aiops_test_up", now, now, 1.0))
    [nan] = prom.fetch(RangeQuery("0/0", now, now, 1.0))
    assert math.isnan(nan.values[0])


def test_fetch_many_keeps_order_and_isolates_failures(prom: Prometheus) -> None:
    now = datetime.now(UTC)
    out = prom.fetch_many(
        [
            RangeQuery("aiops_test_up", now, now, 1.0),
            RangeQuery("rate(up[", now, now, 1.0),
            RangeQuery("vector(3)", now, now, 1.0),
        ]
    )
    assert isinstance(out[0], list) and out[0][0].values == [1.0]
    assert isinstance(out[1], PrometheusError)
    assert "rate(up[" in str(out[1]) and "bad_data" in str(out[1])
    assert isinstance(out[2], list) and out[2][0].values == [3.0]


def test_unreachable_prometheus_is_an_error_per_query_not_a_crash() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    prom = Prometheus(PrometheusSettings(url=url, timeout_s=2))
    now = datetime.now(UTC)
    out = prom.fetch_many([RangeQuery("up", now, now, 1.0)] * 3)
    assert all(isinstance(o, PrometheusError) and url in str(o) for o in out)
    assert "AIOPS_PROMETHEUS__URL" in str(out[0])


def test_a_silent_server_times_out_with_the_setting_to_change() -> None:
    # Accepts connections (the kernel's backlog) and never answers.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        prom = Prometheus(PrometheusSettings(url=url, timeout_s=0.3))
        now = datetime.now(UTC)
        with pytest.raises(PrometheusError, match=r"did not answer within 0\.3s") as err:
            prom.fetch(RangeQuery("up", now, now, 1.0))
        assert "AIOPS_PROMETHEUS__TIMEOUT_S" in str(err.value)
