"""The Prometheus integration against the real server from the distribution's package."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from aiops.config import PrometheusSettings
from aiops.integrations.prometheus import Prometheus, PrometheusError
from tests.servers import MetricsTarget, PrometheusServer, free_port, scraped, wait_until


def test_instant_and_range_queries_see_the_scraped_target(
    prometheus: PrometheusServer, metrics_target: MetricsTarget
) -> None:
    metrics_target.values["aiops_test_queue_depth"] = 42.0
    wait_until(lambda: scraped(prometheus.url, "aiops_test_queue_depth"), 15, "a scrape")
    prom = Prometheus(PrometheusSettings(url=prometheus.url))
    assert prom.check().startswith("2.")
    [series] = prom.query("aiops_test_queue_depth")
    assert series.values == [42.0]
    assert series.labels["job"] == "test"

    def history() -> list[float]:
        end = datetime.now(UTC)
        [ranged] = prom.query_range("aiops_test_up", end - timedelta(seconds=30), end, step_s=1)
        assert ranged.timestamps == sorted(ranged.timestamps)
        return ranged.values

    wait_until(lambda: len(history()) >= 3, 15, "three seconds of history")
    assert all(v == 1.0 for v in history())


def test_nan_values_come_back_as_nan(prometheus: PrometheusServer) -> None:
    [series] = Prometheus(PrometheusSettings(url=prometheus.url)).query("0/0")
    assert math.isnan(series.values[0])


def test_bad_promql_names_the_query(prometheus: PrometheusServer) -> None:
    prom = Prometheus(PrometheusSettings(url=prometheus.url))
    with pytest.raises(PrometheusError, match=r"refused the query 'rate\(up\['"):
        prom.query("rate(up[")


def test_unreachable_prometheus_names_the_address_and_the_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    prom = Prometheus(PrometheusSettings(url=url, timeout_s=2))
    with pytest.raises(PrometheusError) as err:
        prom.query("up")
    assert url in str(err.value)
    assert "AIOPS_PROMETHEUS__URL" in str(err.value)
