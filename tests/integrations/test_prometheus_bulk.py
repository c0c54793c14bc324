"""The bulk query path of the detection pass (POSTed form, orjson, concurrent, ranges in parts)
against real Prometheus."""

from __future__ import annotations

import http.server
import math
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from aiops.config import PrometheusSettings
from aiops.integrations.prometheus import (
    Prometheus,
    PrometheusError,
    RangeQuery,
    Series,
    _refusal,
)
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


def test_the_same_query_twice_is_asked_once(prom: Prometheus) -> None:
    now = datetime.now(UTC)
    shared, other = RangeQuery("vector(1)", now, now, 1.0), RangeQuery("vector(2)", now, now, 1.0)
    asked: list[str] = []
    fetch = prom.fetch
    prom.fetch = lambda q, limits=None: asked.append(q.promql) or fetch(q, limits)  # type: ignore[method-assign]
    out = prom.fetch_many([shared, other, shared])
    assert sorted(asked) == ["vector(1)", "vector(2)"]
    assert [o[0].values for o in out if isinstance(o, list)] == [[1.0], [2.0], [1.0]]


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


def test_a_range_in_parts_is_the_range_in_one(
    prom: Prometheus, prometheus: PrometheusServer, metrics_target: MetricsTarget
) -> None:
    metrics_target.values['aiops_test_parts{shard="a"}'] = 1.0
    wait_until(lambda: scraped(prometheus.url, 'aiops_test_parts{shard="a"}'), 15, "a scrape")
    metrics_target.values['aiops_test_parts{shard="b"}'] = 2.0  # fewer points: series vary
    wait_until(lambda: scraped(prometheus.url, 'aiops_test_parts{shard="b"}'), 15, "a scrape")
    time.sleep(2.5)
    # Ends a second ago, so a scrape in flight cannot add a point between the two reads.
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    q = RangeQuery("aiops_test_parts or aiops_test_up", end - timedelta(seconds=13), end, 1.0)
    whole, parts = prom.fetch(q), prom.fetch_chunked(q)  # 14 steps: 4, then larger parts
    assert len(whole) == 3 and len({len(s.values) for s in whole}) > 1
    assert _rows(parts) == _rows(whole)
    # Series at the same times hold one list of them (a cold start's memory), merged or not.
    two = 'label_replace(vector(1), "k", "a", "", "") or label_replace(vector(2), "k", "b", "", "")'
    for a, b in (
        prom.fetch(RangeQuery(two, q.start, q.end, 1.0)),
        prom.fetch_chunked(RangeQuery(two, q.start, q.end, 1.0)),
    ):
        assert len(a.timestamps) == 14 and a.timestamps is b.timestamps
        assert {a.values[0], b.values[0]} == {1.0, 2.0}
    # No time left after the first part: the newest steps only.
    newest = prom.fetch_chunked(q, budget_s=0)
    assert newest and all(s.timestamps[0] >= end.timestamp() - 3 for s in newest)
    # (its 4 steps, fewer where a scrape came late on a loaded machine)
    assert 1 <= max(len(s.values) for s in newest) <= 4
    [ok, bad] = prom.fetch_many([q, RangeQuery("rate(up[", q.start, q.end, 1.0)], chunked=True)
    assert isinstance(ok, list) and len(ok) == 3 and isinstance(bad, PrometheusError)


def test_parts_hold_no_more_points_than_the_cap(
    prom: Prometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold start's memory peaks on its parts' parsed answers: a part of many series is
    short, whatever its speed allows."""
    import aiops.integrations.prometheus as module

    monkeypatch.setattr(module, "_PART_POINTS", 6)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    three = " or ".join(f'label_replace(vector({i}), "k", "{i}", "", "")' for i in range(3))
    q = RangeQuery(three, end - timedelta(seconds=13), end, 1.0)
    sizes: list[int] = []
    fetch = prom.fetch
    prom.fetch = lambda part, limits=None: (  # type: ignore[method-assign]
        sizes.append(round((part.end - part.start).total_seconds()) + 1) or fetch(part, limits)
    )
    parts = prom.fetch_chunked(q)
    assert sizes[0] == 4 and set(sizes[1:]) <= {1, 2} and sum(sizes) == 14  # 3 series x 2 <= 6
    assert _rows(parts) == _rows(prom.fetch(q))


def _rows(series: list[Series]) -> list[tuple[list[tuple[str, str]], list[float], list[float]]]:
    return sorted((sorted(s.labels.items()), s.timestamps, s.values) for s in series)


class _NotPrometheus(http.server.BaseHTTPRequestHandler):
    """What a wrong AIOPS_PROMETHEUS__URL may point at: a web page, a proxy's error."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = {
            "/gateway": (502, b"Bad Gateway"),
            "/array": (200, b"[1, 2]"),  # JSON, but not Prometheus' answer
        }.get(
            self.path.removesuffix("/api/v1/query_range").removesuffix("/api/v1/query"),
            (200, b"<html>"),
        )
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_answers_that_are_not_prometheus_name_the_query_and_the_setting() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotPrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        now = datetime.now(UTC)
        q = RangeQuery("up", now - timedelta(seconds=10), now, 1.0)
        [page, gateway, array] = [
            Prometheus(PrometheusSettings(url=base, timeout_s=2)).fetch_many([q], chunked=True)[0]
            for base in (url, url + "/gateway", url + "/array")
        ]
        assert isinstance(page, PrometheusError) and isinstance(gateway, PrometheusError)
        assert isinstance(array, PrometheusError)
        assert "did not answer JSON for 'up'" in str(page)
        assert "did not answer JSON for 'up'" in str(array)
        assert "refused the query 'up': HTTP 502 (Bad Gateway)" in str(gateway)
        assert all("AIOPS_PROMETHEUS__URL" in str(e) for e in (page, gateway, array))
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_timing_out_a_query_says_which_setting_to_raise() -> None:
    # As Prometheus answers a query that ran past the `timeout` we send (503); its evaluation
    # time cannot be pinned between our read timeout and its own in a test.
    body = b'{"status":"error","errorType":"timeout","error":"query timed out in evaluation"}'
    why = _refusal(503, body)
    assert why.startswith("timeout: query timed out") and "AIOPS_PROMETHEUS__TIMEOUT_S" in why
    assert "AIOPS_PROMETHEUS__TIMEOUT_S" not in _refusal(400, b'{"errorType":"bad_data"}')
