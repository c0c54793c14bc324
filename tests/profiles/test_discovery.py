"""Discovery against a real Prometheus: which families exist, bounded to the profiles' own and
to recent samples; what it turns on; what it keeps when Prometheus cannot answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.config import ConfigError, ProfileSettings, PrometheusSettings
from aiops.integrations.discovery import (
    ProfileDiscovery,
    discover_families,
    wanted_families,
)
from aiops.integrations.prometheus import Prometheus
from tests.profiles.conftest import States
from tests.servers import free_port


def test_it_finds_each_profiles_families_and_the_labels_they_need(states: States) -> None:
    discovery = ProfileDiscovery(ProfileSettings(), states.prometheus())
    wanted = wanted_families(discovery.profiles)
    found = discover_families(states.prometheus(), wanted, 600, datetime.now(UTC))
    assert {"istio_requests_total", "response_total", "rpc_server_duration_milliseconds"} <= set(
        found
    )
    # asked for the labels only where a signal needs them
    assert found["istio_requests_total"] == frozenset()
    assert {"service_name", "k8s_namespace_name"} <= found["rpc_server_duration_milliseconds"]
    assert "node_cpu_seconds_total" not in found  # not in this Prometheus
    live = discovery.current()
    assert live.discovered and live.profiles_found == [
        "base",
        "istio",
        "linkerd",
        "otel-semconv",
        "otel-spanmetrics",
        "ingress-nginx",
    ]
    assert live.by_name()["error_ratio"].profiles == live.profiles_found[1:]
    # node_exporter is missing here: its signals cannot run, and say for want of what
    assert "node_cpu_busy" not in live.by_name()
    assert live.why_not("node_cpu_busy") == "base needs node_cpu_seconds_total"


def test_families_without_recent_samples_do_not_count(states: States) -> None:
    later = datetime.fromtimestamp(states.end, UTC) + timedelta(hours=2)
    wanted = {"istio_requests_total": set[str]()}
    assert discover_families(states.prometheus(), wanted, 600, later) == {}


def test_enabled_profiles_and_the_always_on_base(states: States) -> None:
    live = ProfileDiscovery(ProfileSettings(enabled=["linkerd"]), states.prometheus()).current()
    assert live.profiles_found == ["base", "linkerd"]
    with pytest.raises(ConfigError, match=r"profiles.enabled: unknown profiles \['zipkin'\]"):
        ProfileDiscovery(ProfileSettings(enabled=["zipkin"]), states.prometheus())


def test_it_asks_again_only_when_due_and_keeps_the_last_answer_meanwhile(states: States) -> None:
    now = [0.0]
    down = Prometheus(PrometheusSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=1))
    discovery = ProfileDiscovery(ProfileSettings(refresh_s=300), down, clock=lambda: now[0])
    before = discovery.current()
    assert not before.discovered  # never answered: every part of every profile
    assert discovery.last_error is not None and "unreachable" in discovery.last_error
    discovery.prometheus = states.prometheus()
    now[0] = 10.0  # a failure is retried soon, not a whole refresh later
    assert discovery.current() is before
    now[0] = 31.0
    found = discovery.current()
    assert found.discovered and discovery.last_error is None
    discovery.prometheus = down
    now[0] = 300.0
    assert discovery.current() is found  # not due yet
    now[0] = 332.0
    assert discovery.current() is found  # due, failed: the last answer stands
    assert discovery.last_error is not None


def test_off_means_every_part_unchecked(states: States) -> None:
    live = ProfileDiscovery(ProfileSettings(discovery=False), states.prometheus()).current()
    assert not live.discovered
    assert "node_cpu_busy" in live.by_name()
