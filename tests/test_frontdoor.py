"""The front-door rule (aiops.frontdoor) on every HTTP door: blank credentials are a startup
error naming the setting; a routable address needs credentials (`aiops mcp` and `aiops dev`
alike); Host names, browser origins and JSON bodies are checked before anything is read."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from aiops.config import (
    AlertmanagerSettings,
    ConfigError,
    McpSettings,
    Settings,
    TemporalSettings,
    load_settings,
)
from aiops.devstack import DevStackError, run_dev
from aiops.domain import Anomaly
from aiops.frontdoor import FrontDoorError, guard
from aiops.integrations.alertmanager import WebhookAuth, create_app
from aiops.mcp.server import http_app
from aiops.webhook import webhook_door
from tests.integrations.test_alertmanager import alert, payload
from tests.servers import free_port

REPO = Path(__file__).resolve().parents[1]
TOKEN = "tok-front-door-0123456789"


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"AIOPS_MCP__TOKENS": '{"": "alice"}'}, "AIOPS_MCP__TOKENS"),
        ({"AIOPS_MCP__TOKENS": '{"   ": "alice"}'}, "AIOPS_MCP__TOKENS"),
        ({"AIOPS_MCP__TOKENS": '{"tok-123456": " "}'}, "AIOPS_MCP__TOKENS"),
        ({"AIOPS_ALERTMANAGER__TOKENS": '[""]'}, "AIOPS_ALERTMANAGER__TOKENS"),
        ({"AIOPS_ALERTMANAGER__TOKENS": '["ok-token", " \\t"]'}, "AIOPS_ALERTMANAGER__TOKENS"),
        ({"AIOPS_ALERTMANAGER__BASIC_AUTH": '{"am": ""}'}, "AIOPS_ALERTMANAGER__BASIC_AUTH"),
        ({"AIOPS_ALERTMANAGER__BASIC_AUTH": '{"": "pw"}'}, "AIOPS_ALERTMANAGER__BASIC_AUTH"),
        ({"AIOPS_SLACK__SIGNING_SECRET": " "}, "AIOPS_SLACK__SIGNING_SECRET"),
        ({"AIOPS_PROMETHEUS__BEARER_TOKEN": ""}, "AIOPS_PROMETHEUS__BEARER_TOKEN"),
    ],
)
def test_blank_credentials_are_a_startup_error_naming_the_setting(
    env: dict[str, str], setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=setting) as err:
        load_settings()
    assert "must not be empty or whitespace" in str(err.value)
    assert "got" not in str(err.value), "a secret setting's value is never echoed"


def test_blank_credentials_are_refused_where_they_are_checked_too() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        WebhookAuth(bearer_tokens=[""])
    with pytest.raises(ValueError, match="must not be empty"):
        WebhookAuth(basic={"am": " "})


def test_a_routable_address_without_credentials_is_refused_by_mcp_and_webhook() -> None:
    open_mcp = Settings(mcp=McpSettings(host="0.0.0.0"))
    with pytest.raises(FrontDoorError, match="AIOPS_MCP__TOKENS"):
        http_app(open_mcp)
    with pytest.raises(FrontDoorError, match="AIOPS_MCP__TOKENS"):
        http_app(Settings(), host="10.1.2.3")
    http_app(Settings(mcp=McpSettings(host="0.0.0.0", tokens={TOKEN: "alice"})))  # credentials
    with pytest.raises(FrontDoorError, match="AIOPS_ALERTMANAGER__TOKENS"):
        webhook_door(AlertmanagerSettings(host="0.0.0.0")).check()


async def test_aiops_dev_refuses_an_open_mcp_server_before_starting_anything(
    tmp_path: Path,
) -> None:
    settings = Settings(
        mcp=McpSettings(host="0.0.0.0"),
        state_dir=tmp_path,
        policies_dir=REPO / "policies",
        playbooks_dir=REPO / "playbooks",
    )
    with pytest.raises(DevStackError, match=r"refusing to serve the MCP server on 0\.0\.0\.0"):
        await run_dev(settings)
    assert not list(tmp_path.iterdir()), "no Temporal dev server was started"


@pytest.fixture
async def mcp_url() -> AsyncIterator[str]:
    """`aiops mcp --transport http`'s app with a token, served by uvicorn on loopback."""
    os.environ.setdefault("FASTMCP_CHECK_FOR_UPDATES", "off")
    settings = Settings(
        temporal=TemporalSettings(address="127.0.0.1:1"),
        mcp=McpSettings(tokens={TOKEN: "alice@example.com"}),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(http_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await task


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "front-door-test", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


async def test_mcp_http_refuses_bare_bearer_rebinding_cross_site_and_text_plain(
    mcp_url: str,
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", **ACCEPT}
    async with httpx.AsyncClient(timeout=10) as http:
        ok = await http.post(mcp_url, json=INITIALIZE, headers=auth)
        assert ok.status_code == 200, ok.text
        bare = await http.post(
            mcp_url, json=INITIALIZE, headers={"Authorization": "Bearer", **ACCEPT}
        )
        assert bare.status_code == 401
        rebound = await http.post(
            mcp_url, json=INITIALIZE, headers={**auth, "Host": "attacker.example:8765"}
        )
        assert rebound.status_code == 421
        assert "AIOPS_MCP__ALLOWED_HOSTS" in rebound.json()["error"]
        page = await http.post(
            mcp_url, json=INITIALIZE, headers={**auth, "Origin": "http://attacker.example"}
        )
        assert page.status_code == 403
        plain = await http.post(
            mcp_url,
            content=b'{"jsonrpc": "2.0"}',
            headers={**auth, "Content-Type": "text/plain"},
        )
        assert plain.status_code == 415


async def test_loopback_webhook_refuses_cross_site_posts_and_deep_json() -> None:
    """A loopback receiver has no credentials, so the rule is what keeps web pages out."""
    received: list[list[Anomaly]] = []

    async def sink(anomalies: list[Anomaly]) -> None:
        received.append(anomalies)

    cfg = AlertmanagerSettings()
    app = guard(create_app(None, sink), webhook_door(cfg))
    transport = httpx.ASGITransport(app=app)
    base = f"http://127.0.0.1:{cfg.port}"
    async with httpx.AsyncClient(transport=transport, base_url=base) as http:
        body = httpx.Request("POST", "/", json=payload(alert())).content
        plain = await http.post(
            "/alertmanager", content=body, headers={"Content-Type": "text/plain"}
        )
        assert plain.status_code == 415
        form = await http.post(
            "/alertmanager",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415
        rebound = await http.post(
            "/alertmanager", json=payload(alert()), headers={"Host": "attacker.example"}
        )
        assert rebound.status_code == 421
        page = await http.post(
            "/alertmanager", json=payload(alert()), headers={"Origin": "https://attacker.example"}
        )
        assert page.status_code == 403
        assert received == [], "no refused request reached the incidents"

        deep = b"[" * 100_000 + b"]" * 100_000
        nested = await http.post(
            "/alertmanager", content=deep, headers={"Content-Type": "application/json"}
        )
        assert nested.status_code == 400
        assert "nested too deeply" in nested.json()["error"]

        ok = await http.post("/alertmanager", json=payload(alert()))
        assert ok.status_code == 200, ok.text
    assert len(received) == 1


async def test_listed_host_names_are_served() -> None:
    async def sink(anomalies: list[Anomaly]) -> None:
        return None

    cfg = AlertmanagerSettings(allowed_hosts=["aiops-webhook.aiops.svc"])
    app = guard(create_app(None, sink), webhook_door(cfg))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://aiops-webhook.aiops.svc:8766"
    ) as http:
        assert (await http.post("/alertmanager", json=payload(alert()))).status_code == 200
