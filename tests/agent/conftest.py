"""One real Prometheus with the shop's backfilled history, shared by the agent tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from aiops.config import PrometheusSettings
from aiops.domain import Anomaly, Direction, Incident
from aiops.integrations.prometheus import Prometheus
from tests.agent.shop import BackfilledPrometheus, History, backfilled_prometheus


@pytest.fixture(scope="session")
def shop_prometheus() -> Iterator[BackfilledPrometheus]:
    with backfilled_prometheus(time.time()) as prom:
        yield prom


@pytest.fixture
def prom(shop_prometheus: BackfilledPrometheus) -> Prometheus:
    return Prometheus(PrometheusSettings(url=shop_prometheus.url))


@pytest.fixture
def history(shop_prometheus: BackfilledPrometheus) -> History:
    return shop_prometheus.history


def incident_for(ns: str, h: History, entity: str = "frontend") -> Incident:
    """An incident as the detector would open it: an alarm 30 s after the fault began."""
    at = datetime.fromtimestamp(h.fault_at + 30, tz=UTC)
    return Incident(
        id=f"incident-{ns}",
        fingerprint=f"fp-{ns}",
        namespace=ns,
        opened_at=at,
        anomalies=[
            Anomaly(
                signal="latency_p99",
                series={"workload": entity, "namespace": ns},
                query="histogram_quantile(0.99, ...)",
                start=at,
                score=6.0,
                direction=Direction.UP,
            )
        ],
    )


def node_incident(ns: str, h: History, node: str) -> Incident:
    """A cluster-scope incident as the detector opens it from a node's own anomalies."""
    at = datetime.fromtimestamp(h.fault_at + 30, tz=UTC)
    return Incident(
        id=f"incident-node-{ns}",
        fingerprint=f"fp-node-{ns}",
        namespace=None,
        opened_at=at,
        anomalies=[
            Anomaly(
                signal="node_cpu_busy",
                series={"instance": f"{node}:9100"},
                query='1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m]))',
                start=at,
                score=8.0,
                direction=Direction.UP,
            )
        ],
    )
