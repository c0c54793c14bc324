"""/healthz, /readyz and /metrics as the kubelet and Prometheus see them, over real HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from aiops.telemetry import metrics
from aiops.telemetry.health import Flag, Health
from aiops.telemetry.server import TelemetryApp, TelemetryServer


@pytest.fixture
def served() -> Iterator[tuple[Health, str]]:
    health = Health(stale_after_s=0.5)
    server = TelemetryServer(TelemetryApp(health), "127.0.0.1", 0).start()
    try:
        yield health, server.url
    finally:
        server.stop()


def test_readiness_waits_for_every_check_and_liveness_for_a_turning_loop(
    served: tuple[Health, str],
) -> None:
    health, url = served
    serving = Flag("the worker is starting")
    health.add_check("serving", serving)
    ready = httpx.get(url + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["serving"] == "the worker is starting"
    assert httpx.get(url + "/healthz").status_code == 200  # starting is alive
    health.beat()
    serving.set()
    assert httpx.get(url + "/readyz").json() == {
        "status": "ok",
        "checks": {"loop": "ok", "serving": "ok"},
    }
    time.sleep(0.7)  # the loop stopped beating: blocked
    alive = httpx.get(url + "/healthz")
    assert alive.status_code == 503
    assert "event loop blocked" in alive.json()["checks"]["loop"]
    assert httpx.get(url + "/readyz").status_code == 503


def test_metrics_page_and_refusals(served: tuple[Health, str]) -> None:
    _, url = served
    metrics.ANOMALIES.labels("error_ratio").inc()
    page = httpx.get(url + "/metrics")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    assert 'aiops_anomalies_total{signal="error_ratio"}' in page.text
    assert "process_resident_memory_bytes" in page.text
    assert httpx.post(url + "/metrics").status_code == 405
    missing = httpx.get(url + "/incidents")
    assert missing.status_code == 404 and "/metrics" in missing.json()["error"]


def test_a_taken_telemetry_port_is_a_clear_setting_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiops.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("AIOPS_TELEMETRY__PORT", str(taken.getsockname()[1]))
        assert main(["worker"]) == 2
    message = capsys.readouterr().err
    assert "cannot serve health and metrics on 127.0.0.1:" in message
    assert "AIOPS_TELEMETRY__PORT" in message and "Traceback" not in message
