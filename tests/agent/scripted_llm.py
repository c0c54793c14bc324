"""A scripted OpenAI-compatible server on 127.0.0.1: answers /v1/chat/completions in order."""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    body: dict[str, Any] | None = None
    status: int = 200
    delay_s: float = 0.0
    raw: bytes | None = None


def completion(message: dict[str, Any], finish: str, tokens: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": tokens - 10, "completion_tokens": 10, "total_tokens": tokens},
    }


def tool_call(name: str, arguments: dict[str, Any], tokens: int = 500) -> Reply:
    call = {
        "id": f"call-{name}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    return Reply(completion({"content": None, "tool_calls": [call]}, "tool_calls", tokens))


def answer(content: str | dict[str, Any], tokens: int = 500) -> Reply:
    text = content if isinstance(content, str) else json.dumps(content)
    return Reply(completion({"content": text}, "stop", tokens))


def refusal(text: str) -> Reply:
    return Reply(completion({"content": None, "refusal": text}, "stop", 50))


class ScriptedLlm:
    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.raw_requests: list[bytes] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                server.raw_requests.append(raw)
                server.requests.append(json.loads(raw))
                reply = server.replies.pop(0) if server.replies else Reply(status=500)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                body = (
                    reply.raw
                    if reply.raw is not None
                    else json.dumps(
                        reply.body or {"error": {"message": "scripted failure"}}
                    ).encode()
                )
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (time-out tests)

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A handler still sleeping for a time-out test must not hold up the test's teardown.
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
