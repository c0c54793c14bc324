"""Posting and updating approval messages and their threads, idempotently.

Activities run at least once, so every call is keyed by incident id + plan hash: a retry updates
the message it already posted instead of posting a second one, and a progress line with a key
already posted is not posted again. Where each message lives (channel, ts) is kept in one small
JSON file per key under `<state_dir>/slack/`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from aiops.approvals.slack.blocks import (
    Block,
    approval_blocks,
    fallback_text,
    outcome_text,
    with_status,
)
from aiops.config import Settings
from aiops.domain import ApprovalRequest, IncidentStatus, RcaReport
from aiops.integrations.redact import Redactor

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class StoredMessage:
    channel: str
    ts: str
    blocks: list[Block] = field(default_factory=list)
    text: str = ""
    progress: list[str] = field(default_factory=list)
    closed: str | None = None


@dataclass(frozen=True)
class MessageRef:
    channel: str
    ts: str
    posted: bool  # False when an existing message was updated instead


class MessageStore:
    """One JSON file per incident + plan; written atomically so a crash never leaves half."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, incident_id: str, plan_hash: str) -> Path:
        return self.root / f"{_SAFE.sub('_', incident_id)}--{_SAFE.sub('_', plan_hash)}.json"

    def get(self, incident_id: str, plan_hash: str) -> StoredMessage | None:
        path = self._path(incident_id, plan_hash)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RuntimeError(
                f"Slack message state {path} is unreadable ({exc}); delete it "
                "to post a fresh message"
            ) from exc
        return StoredMessage(**data)

    def put(self, incident_id: str, plan_hash: str, message: StoredMessage) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(incident_id, plan_hash)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(message), fh)
        os.replace(tmp, path)


class SlackNotifier:
    """Every text it posts passes the redactor first: root causes quote log lines."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        store: MessageStore,
        redactor: Redactor | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.store = store
        self.redactor = redactor or Redactor()
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, incident_id: str, plan_hash: str) -> asyncio.Lock:
        return self._locks.setdefault(f"{incident_id}/{plan_hash}", asyncio.Lock())

    async def request_approval(
        self,
        request: ApprovalRequest,
        report: RcaReport | None,
        ui_link: str | None = None,
        thread: str | None = None,
    ) -> MessageRef:
        """Post the approval message, or bring the one already posted up to date. `thread` is
        what the message is stored under (default: the incident id); the activities pass the
        incident's run too, as the next incident of a namespace reuses the incident id."""
        blocks: list[Block] = self.redactor.data(approval_blocks(request, report, ui_link=ui_link))
        text = self.redactor.text(fallback_text(request))
        key = thread or request.incident_id
        async with self._lock(key, request.plan_hash):
            stored = self.store.get(key, request.plan_hash)
            if stored is not None and stored.blocks:
                if stored.closed is None:
                    await self.client.chat_update(
                        channel=stored.channel, ts=stored.ts, text=text, blocks=blocks
                    )
                    stored.blocks, stored.text = blocks, text
                    self.store.put(key, request.plan_hash, stored)
                return MessageRef(stored.channel, stored.ts, posted=False)
            if stored is not None:
                # Progress lines came first (a thread with a plain root): make that root the
                # approval message rather than posting a second one.
                await self.client.chat_update(
                    channel=stored.channel, ts=stored.ts, text=text, blocks=blocks
                )
                stored.blocks, stored.text = blocks, text
                self.store.put(key, request.plan_hash, stored)
                return MessageRef(stored.channel, stored.ts, posted=False)
            resp = await self.client.chat_postMessage(
                channel=self.channel,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                metadata={
                    "event_type": "aiops_approval",
                    "event_payload": {
                        "incident_id": request.incident_id,
                        "plan_hash": request.plan_hash,
                    },
                },
            )
            stored = StoredMessage(
                channel=str(resp["channel"]), ts=str(resp["ts"]), blocks=blocks, text=text
            )
            self.store.put(key, request.plan_hash, stored)
            return MessageRef(stored.channel, stored.ts, posted=True)

    async def progress(self, incident_id: str, plan_hash: str, key: str, text: str) -> bool:
        """Reply in the incident's thread once per key; True when this call posted it."""
        async with self._lock(incident_id, plan_hash):
            stored = await self._root(incident_id, plan_hash)
            if key in stored.progress:
                return False
            await self.client.chat_postMessage(
                channel=stored.channel,
                thread_ts=stored.ts,
                text=self.redactor.text(text),
                unfurl_links=False,
            )
            stored.progress.append(key)
            self.store.put(incident_id, plan_hash, stored)
            return True

    async def upload(
        self, incident_id: str, plan_hash: str, key: str, content: bytes, filename: str, title: str
    ) -> bool:
        """Attach a file (the anomaly plot) to the incident's thread once per key."""
        async with self._lock(incident_id, plan_hash):
            stored = await self._root(incident_id, plan_hash)
            if key in stored.progress:
                return False
            await self.client.files_upload_v2(
                channel=stored.channel,
                thread_ts=stored.ts,
                content=content,
                filename=filename,
                title=title,
                alt_txt=title,
            )
            stored.progress.append(key)
            self.store.put(incident_id, plan_hash, stored)
            return True

    async def close(
        self,
        incident_id: str,
        plan_hash: str,
        status: IncidentStatus | str,
        approved_by: list[str],
        detail: str = "",
    ) -> bool:
        """Replace the buttons with the outcome; True when the message changed."""
        async with self._lock(incident_id, plan_hash):
            stored = self.store.get(incident_id, plan_hash)
            if stored is None or not stored.blocks:
                return False
            line = outcome_text(status, approved_by, self.redactor.text(detail))
            if stored.closed == line:
                return False
            blocks = with_status(stored.blocks, line, buttons=False)
            await self.client.chat_update(
                channel=stored.channel,
                ts=stored.ts,
                text=f"{stored.text} - {_plain(status)}",
                blocks=blocks,
            )
            stored.blocks, stored.closed = blocks, line
            self.store.put(incident_id, plan_hash, stored)
            return True

    async def _root(self, incident_id: str, plan_hash: str) -> StoredMessage:
        stored = self.store.get(incident_id, plan_hash)
        if stored is not None:
            return stored
        resp = await self.client.chat_postMessage(
            channel=self.channel, text=f"Incident {incident_id} (plan {plan_hash})"
        )
        stored = StoredMessage(channel=str(resp["channel"]), ts=str(resp["ts"]))
        self.store.put(incident_id, plan_hash, stored)
        return stored


def _plain(status: IncidentStatus | str) -> str:
    value: Any = status.value if isinstance(status, IncidentStatus) else status
    return str(value).replace("_", " ")


def web_client(token: str, api_url: str | None = None) -> AsyncWebClient:
    """A Web API client; `api_url` points it elsewhere (a proxy, or the test stub). slack_sdk's
    own retry handlers wait out a rate limit (its Retry-After) and retry a 5xx or a dropped
    connection once, inside the activity's time limit; what still fails is the activity's to
    report (aiops.activities.notify)."""
    handlers = [
        AsyncConnectionErrorRetryHandler(max_retry_count=1),
        AsyncRateLimitErrorRetryHandler(max_retry_count=1),
        AsyncServerErrorRetryHandler(max_retry_count=1),
    ]
    base = api_url.rstrip("/") + "/" if api_url else AsyncWebClient.BASE_URL
    return AsyncWebClient(token=token, base_url=base, retry_handlers=handlers)


def notifier_from_settings(settings: Settings) -> SlackNotifier | None:
    """The notifier for the worker, or None when Slack is not configured (no token/channel)."""
    slack = settings.slack
    if slack.bot_token is None or not slack.channel:
        return None
    client = web_client(slack.bot_token.get_secret_value(), slack.api_url)
    return SlackNotifier(
        client,
        slack.channel,
        MessageStore(settings.state_dir / "slack"),
        Redactor(settings.llm.redact_patterns),
    )
