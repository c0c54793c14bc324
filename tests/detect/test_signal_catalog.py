"""The signal catalog: the shipped profiles' signals under real exporter metric names, rendering,
and user-defined signals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aiops.detect.catalog import BUILTIN_SIGNALS, Signal, build_catalog
from aiops.domain.models import Direction


def test_golden_signals_use_the_real_exporter_metric_names() -> None:
    text = " ".join(s.query for s in BUILTIN_SIGNALS)
    for metric in (
        "istio_requests_total",
        "istio_request_duration_milliseconds_bucket",
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "container_spec_memory_limit_bytes",
        "kube_deployment_status_replicas_available",
        "kube_pod_container_status_restarts_total",
        "kube_pod_status_ready",
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
    ):
        assert metric in text, metric
    cat = build_catalog()
    for name in (
        "request_rate",
        "error_ratio",
        "latency_p99",
        "cpu_vs_limit",
        "memory_vs_limit",
        "restarts",
        "pods_not_ready",
        "node_cpu_busy",
    ):
        assert name in cat
    assert cat["error_ratio"].direction is Direction.UP
    assert cat["error_ratio"].entity_label == "workload"  # canonical, whatever the exporter
    assert cat["latency_p99"].unit == "s"  # seconds in every profile


def test_render_fills_namespace_and_window_and_leaves_no_placeholder() -> None:
    cat = build_catalog()
    q = cat["error_ratio"].render_for("shop", window="30s")
    # each profile's part filters on its exporter's own namespace label
    assert 'destination_workload_namespace="shop"' in q
    assert 'k8s_namespace_name="shop"' in q
    assert 'dst_namespace="shop"' in q
    assert 'response_code=~"5.."' in q
    assert "[30s]" in q
    assert "$filter" not in q and "$window" not in q
    for sig in cat:
        plain = sig.render()
        assert "$filter" not in plain and "$window" not in plain
        assert ",}" not in plain
        assert ", }" not in plain
    node = cat["node_cpu_busy"].render_for("shop")
    assert "shop" not in node  # nodes are not namespaced


def test_render_rejects_bad_window_and_label() -> None:
    sig = build_catalog()["request_rate"]
    with pytest.raises(ValueError, match="duration"):
        sig.render(window="5 minutes")
    with pytest.raises(ValueError, match="label name"):
        sig.render({"bad-label": "x"})


def test_user_defined_signals_extend_or_override_the_catalog() -> None:
    user = {
        "name": "queue_depth",
        "query": "sum by (queue) (rabbitmq_queue_messages{$filter})",
        "entity_label": "queue",
        "direction": "up",
        "unit": "messages",
    }
    cat = build_catalog([user])
    assert cat["queue_depth"].render({"vhost": "a"}) == (
        'sum by (queue) (rabbitmq_queue_messages{vhost="a"})'
    )
    override = dict(user, name="error_ratio")
    assert build_catalog([override])["error_ratio"].unit == "messages"
    with pytest.raises(ValueError, match="already exists"):
        build_catalog([override], replace=False)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Queue Depth", "snake_case"),
        ("query", "sum(rate(x[$win]))", "unknown placeholders"),
        ("query", "sum(rate(x[1m])", "unbalanced"),
        ("direction", "sideways", "direction"),
    ],
)
def test_invalid_user_signal_is_rejected_with_the_reason(
    field: str, value: str, message: str
) -> None:
    spec = {
        "name": "ok",
        "query": "up{$filter}",
        "entity_label": "job",
        "direction": "up",
        "unit": "1",
    }
    spec[field] = value
    with pytest.raises(ValidationError, match=message):
        Signal.model_validate(spec)
