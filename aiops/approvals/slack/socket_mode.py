"""Socket Mode: Slack pushes clicks over a websocket the app opens, so no public URL is needed.

Each envelope is acknowledged at once (Slack re-delivers after three seconds) and then handled
in the background; an envelope seen before is acknowledged again but not handled twice.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from aiops.approvals.slack.handlers import ApprovalHandler, Outcome
from aiops.logs import get_logger

log = get_logger(__name__)

_ENVELOPES_KEPT = 5_000


class SocketModeApp:
    def __init__(
        self,
        handler: ApprovalHandler,
        app_token: str,
        web: AsyncWebClient,
        *,
        ping_interval: float = 10.0,
    ) -> None:
        self.handler = handler
        self.client = SocketModeClient(
            app_token=app_token, web_client=web, ping_interval=ping_interval
        )
        self.client.socket_mode_request_listeners.append(self._on_request)
        self._envelopes: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[Outcome | None]] = set()
        self.outcomes: list[Outcome] = []

    async def start(self) -> None:
        """Open the websocket (apps.connections.open, then connect)."""
        await self.client.connect()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self.drain()
        await self.client.close()  # type: ignore[no-untyped-call]

    async def drain(self) -> None:
        """Wait for the clicks already received to be handled."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _on_request(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        if req.type == "interactive" and req.envelope_id not in self._envelopes:
            self._envelopes[req.envelope_id] = None
            while len(self._envelopes) > _ENVELOPES_KEPT:
                self._envelopes.popitem(last=False)
            # Scheduled before the ack, so whoever sees the ack can wait for the handling.
            task = asyncio.create_task(self._handle(req))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif req.type == "interactive":
            log.info("slack envelope re-delivered; ignored", envelope_id=req.envelope_id)
        # Always acknowledge, re-deliveries too: an unacknowledged envelope is sent again.
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    async def _handle(self, req: SocketModeRequest) -> Outcome | None:
        try:
            outcome = await self.handler.handle(req.payload)
        except Exception:
            # One bad click must not stop the app; the person sees no change and can retry.
            log.exception("slack click failed", envelope_id=req.envelope_id)
            return None
        if outcome is not None:
            self.outcomes.append(outcome)
        return outcome
