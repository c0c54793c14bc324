"""The Alertmanager webhook receiver over real HTTP (uvicorn on a random loopback port)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from aiops.domain import Anomaly
from aiops.integrations.alertmanager import WebhookAuth, create_app
from tests.servers import free_port

TOKEN = "am-token-123"


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "aiops",
        "groupKey": "{}:{}",
        "alerts": list(alerts),
    }


def alert(status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "HighErrorRate", "severity": "critical", **labels},
        "annotations": {"summary": "errors"},
        "startsAt": "2026-11-24T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom:9090/graph?g0.expr=rate%28errors%5B1m%5D%29+%3E+1&g0.tab=1",
        "fingerprint": "abc",
    }


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[Anomaly]]]:
    received: list[Anomaly] = []

    async def sink(anomalies: list[Anomaly]) -> None:
        received.extend(anomalies)

    app = create_app(WebhookAuth(bearer_tokens=[TOKEN], basic={"am": "pw"}), sink, max_body=64_000)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}/alertmanager", received
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_firing_alerts_become_anomalies(receiver: tuple[str, list[Anomaly]]) -> None:
    url, received = receiver
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url,
            json=payload(alert(destination_workload="cartservice"), alert(status="resolved")),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "ignored_resolved": 1}
    [anomaly] = received
    assert anomaly.signal == "alert:HighErrorRate"
    assert anomaly.entity == "cartservice"
    assert anomaly.query == "rate(errors[1m]) > 1"
    assert anomaly.source == "alertmanager"


async def test_basic_auth_as_alertmanager_sends_it(receiver: tuple[str, list[Anomaly]]) -> None:
    url, received = receiver
    async with httpx.AsyncClient() as http:
        response = await http.post(url, json=payload(alert()), auth=("am", "pw"))
    assert response.status_code == 200
    assert len(received) == 1


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer wrong",
        "Basic " + base64.b64encode(b"am:wrong").decode(),
        "Basic !!notbase64",
        "Token am-token-123",
    ],
)
async def test_bad_credentials_are_refused(
    receiver: tuple[str, list[Anomaly]], header: str | None
) -> None:
    url, received = receiver
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient() as http:
        response = await http.post(url, json=payload(alert()), headers=headers)
    assert response.status_code == 401
    assert received == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b'{"version": "3", "status": "firing", "alerts": []}', "version"),
        (
            b'{"version": "4", "status": "firing", "alerts": [{"status": "firing"}]}',
            "alerts.0.labels",
        ),
        # Bytes json.loads refuses with other errors than JSONDecodeError (were 500s).
        (b'{"version": "4", "receiver": "\xff"}', "body is not UTF-8 JSON"),
        (b'{"version": "4", "status": ' + b"1" * 5000 + b"}", "number too long"),
    ],
)
async def test_malformed_payloads_get_400_with_a_reason(
    receiver: tuple[str, list[Anomaly]], body: bytes, reason: str
) -> None:
    url, received = receiver
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url,
            content=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert received == []


async def test_oversized_body_is_refused(receiver: tuple[str, list[Anomaly]]) -> None:
    url, received = receiver
    big = payload(*[alert(pod=f"p{i}" * 50) for i in range(400)])
    async with httpx.AsyncClient() as http:
        response = await http.post(url, json=big, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 413
    assert received == []


def test_an_open_webhook_is_refused_at_start() -> None:
    async def sink(anomalies: list[Anomaly]) -> None:
        return None

    with pytest.raises(ValueError, match="needs credentials"):
        create_app(WebhookAuth(), sink)
