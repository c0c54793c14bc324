"""A loopback Slack: the Web API methods aiops calls, and a Socket Mode websocket.

Answers like Slack (`{"ok": ...}` bodies, errors by name), records every call, and keeps the
messages it was asked to post so a test can read them back and click their buttons.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-test-bot"
APP_TOKEN = "xapp-test-app"
CHANNEL = "C0APPROVALS"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    updates: int = 0


@dataclass
class SlackStub:
    channels: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            CHANNEL: {"id": CHANNEL, "name": "approvals", "is_member": True, "is_archived": False},
            "C0NOTMEMBER": {"id": "C0NOTMEMBER", "name": "elsewhere", "is_member": False},
        }
    )
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)
    acks: list[str] = field(default_factory=list)
    uploads: list[bytes] = field(default_factory=list)
    connections: int = 0
    url: str = ""
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/upload", self._upload)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def thread(self, ts: str) -> list[Message]:
        return [m for m in self.messages.values() if m.thread_ts == ts]

    # --- Web API ---------------------------------------------------------------------------

    def outage(self, status: int, headers: dict[str, str] | None = None) -> None:
        """From now on every Web API call answers HTTP `status` (503, 429 ...); 0 ends it."""
        self._outage = (status, headers or {})

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") or params.get("token")
        self.calls.append(Call(method, params, token))
        status, headers = getattr(self, "_outage", (0, {}))
        if status:
            error = "ratelimited" if status == 429 else "service_unavailable"
            return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        answer = getattr(self, "_" + method.replace(".", "_"), None)
        if answer is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        wanted = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if token != wanted:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        body: dict[str, Any] = answer(params)
        return web.json_response(body)

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://lab.slack.com/",
            "team": "Lab",
            "user": "aiops",
            "team_id": "T0LAB",
            "user_id": "U0AIOPSBOT",
            "bot_id": "B0AIOPS",
        }

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self.channels.get(str(params.get("channel")))
        if info is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": info}

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel"))
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        msg = Message(
            channel,
            ts,
            str(params.get("text", "")),
            list(params.get("blocks") or []),
            thread_ts=params.get("thread_ts"),
        )
        self.messages[ts] = msg
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {"text": msg.text, "blocks": msg.blocks, "ts": ts},
        }

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self.messages.get(str(params.get("ts")))
        if msg is None or msg.channel != params.get("channel"):
            return {"ok": False, "error": "message_not_found"}
        msg.text = str(params.get("text", msg.text))
        if "blocks" in params:
            msg.blocks = list(params["blocks"])
        msg.updates += 1
        return {"ok": True, "channel": msg.channel, "ts": msg.ts, "text": msg.text}

    def _chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel") not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}

    def _files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "upload_url": f"{self.url}/upload", "file_id": "F0PLOT"}

    def _files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "files": [{"id": "F0PLOT"}]}

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.url.replace("http://", "ws://") + "/socket"}

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads.append(await request.read())
        return web.Response(text="OK - " + str(len(self.uploads[-1])))

    # --- Socket Mode -----------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(
            json.dumps(
                {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0AIOPS"}}
            )
        )
        self.connections += 1
        self._connected.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                if "envelope_id" in data:
                    self.acks.append(data["envelope_id"])
        self._sockets.remove(ws)
        return ws

    async def connected(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def ask_to_reconnect(self, timeout: float = 10) -> None:
        """Slack's periodic `disconnect` (refresh_requested); wait for the new connection."""
        before = self.connections
        await self._sockets[-1].send_str(
            json.dumps(
                {
                    "type": "disconnect",
                    "reason": "refresh_requested",
                    "debug_info": {"host": "applink-stub"},
                }
            )
        )
        deadline = time.monotonic() + timeout
        while self.connections == before or not self._sockets:
            if time.monotonic() > deadline:
                raise TimeoutError("the app did not reconnect")
            await asyncio.sleep(0.02)

    async def send_envelope(
        self, envelope_id: str, payload: dict[str, Any], retry_attempt: int = 0, timeout: float = 10
    ) -> None:
        """Deliver an interactive envelope the way Slack does, and wait for its ack."""
        acked = self.acks.count(envelope_id)
        envelope = {
            "envelope_id": envelope_id,
            "type": "interactive",
            "payload": payload,
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        deadline = time.monotonic() + timeout
        while self.acks.count(envelope_id) <= acked:
            if time.monotonic() > deadline:
                raise TimeoutError(f"envelope {envelope_id} was never acknowledged")
            await asyncio.sleep(0.02)


async def _params(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return dict(request.query)
    if request.content_type == "application/json":
        data: dict[str, Any] = json.loads(raw)
        return data
    form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    params: dict[str, Any] = dict(form)
    for key in ("blocks", "attachments", "metadata"):
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params


def click_payload(
    message: Message,
    user_id: str,
    action_id: str,
    *,
    value: str | None = None,
    action_ts: str | None = None,
) -> dict[str, Any]:
    """The `block_actions` payload Slack sends when `user_id` presses a button of `message`."""
    buttons = [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]
    button = next(b for b in buttons if b["action_id"] == action_id)
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T0LAB"},
        "api_app_id": "A0AIOPS",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": message.channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"trigger-{time.monotonic_ns()}",
        "team": {"id": "T0LAB", "domain": "lab"},
        "channel": {"id": message.channel, "name": "approvals"},
        "message": {
            "type": "message",
            "ts": message.ts,
            "text": message.text,
            "blocks": message.blocks,
            "user": "U0AIOPSBOT",
        },
        "response_url": "https://hooks.slack.invalid/actions/T0LAB/1/x",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "aiops_actions",
                "text": button["text"],
                "value": value or button["value"],
                "type": "button",
                "style": button.get("style"),
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }
