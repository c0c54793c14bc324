"""The OpenAI-compatible client: real `openai` package against a scripted loopback server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from aiops.agent import ModelError
from aiops.config import LlmSettings
from aiops.integrations.llm import OpenAiChat
from aiops.integrations.redact import RedactionError, Redactor, redact
from tests.agent.scripted_llm import Reply, ScriptedLlm, answer, tool_call


@pytest.fixture
def servers() -> Iterator[list[ScriptedLlm]]:
    made: list[ScriptedLlm] = []
    yield made
    for s in made:
        s.close()


def chat(
    servers: list[ScriptedLlm], replies: list[Reply], **settings: object
) -> tuple[OpenAiChat, ScriptedLlm]:
    server = ScriptedLlm(replies)
    servers.append(server)
    values: dict[str, object] = {
        "base_url": server.base_url,
        "model": "m",
        "timeout_s": 5.0,
        **settings,
    }
    return OpenAiChat(LlmSettings.model_validate(values)), server


def test_everything_sent_is_redacted(servers: list[ScriptedLlm]) -> None:
    client, server = chat(
        servers,
        [answer("{}")],
        api_key=SecretStr("sk-live-key-1234567890"),
        redact_patterns=[r"cust-\d{6}"],
    )
    client.complete(
        [
            {
                "role": "user",
                "content": "log: Authorization: Bearer abc.def-ghijklmnop "
                "DB_PASSWORD=hunter2 cust-123456 jwt eyJhbGciOiJIUzI1NiJ9"
                ".eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX2hlcmU",
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {
                            "name": "get_pod_logs",
                            "arguments": '{"pod": "x", "token": "s3cr3t-t0ken"}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "api_key: 'AKIAABCDEFGHIJKLMNOP'"},
        ],
        tools=None,
        response_schema=None,
        max_tokens=10,
    )
    body = server.raw_requests[0].decode()
    for secret in (
        "abc.def-ghijklmnop",
        "hunter2",
        "cust-123456",
        "eyJhbGci",
        "s3cr3t-t0ken",
        "AKIAABCDEFGHIJKLMNOP",
    ):
        assert secret not in body
    assert body.count("[REDACTED]") >= 6
    # The API key goes in the header to the endpoint, never into the conversation.
    assert "sk-live-key" not in body


def test_tool_calls_usage_and_structured_output(servers: list[ScriptedLlm]) -> None:
    client, server = chat(servers, [tool_call("list_pods", {}, tokens=321)])
    schema = {"type": "object", "properties": {"summary": {"type": "string"}}}
    turn = client.complete(
        [{"role": "user", "content": "hi"}],
        tools=[
            {
                "type": "function",
                "function": {"name": "list_pods", "parameters": {"type": "object"}},
            }
        ],
        response_schema=schema,
        max_tokens=50,
    )
    assert [(c.name, json.loads(c.arguments)) for c in turn.tool_calls] == [("list_pods", {})]
    assert turn.tokens == 321
    sent = server.requests[0]
    assert sent["response_format"]["json_schema"]["schema"] == schema
    assert sent["max_tokens"] == 50 and sent["model"] == "m"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(status=401), "HTTP 401"),
        (Reply(status=503), "HTTP 503"),
        (Reply(status=200, raw=b"not json"), "failed"),
        (
            Reply(
                status=200,
                body={
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "m",
                    "choices": [],
                },
            ),
            "no choices",
        ),
    ],
)
def test_failures_become_model_errors(
    servers: list[ScriptedLlm], reply: Reply, message: str
) -> None:
    client, server = chat(servers, [reply, reply, reply])
    with pytest.raises(ModelError, match=message):
        client.complete(
            [{"role": "user", "content": "hi"}], tools=None, response_schema=None, max_tokens=5
        )
    assert len(server.requests) == 1  # no retries


def test_time_out_is_quick_and_not_retried(servers: list[ScriptedLlm]) -> None:
    client, server = chat(servers, [Reply(delay_s=2.0, body={})], timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(ModelError, match="timed out"):
        client.complete(
            [{"role": "user", "content": "hi"}], tools=None, response_schema=None, max_tokens=5
        )
    assert time.monotonic() - started < 1.5
    assert len(server.requests) == 1


def test_without_a_base_url_there_is_no_model() -> None:
    with pytest.raises(ValueError, match="AIOPS_LLM__BASE_URL"):
        OpenAiChat(LlmSettings())


def test_redactor_patterns() -> None:
    assert redact("password: 'a b c' rest") == "password: '[REDACTED]' rest"
    assert redact("https://user:pa55@host/x") == "https://user:[REDACTED]@host/x"
    assert redact("nothing secret here, 42 requests") == "nothing secret here, 42 requests"
    assert Redactor([r"\binternal-[a-z]+"]).data({"a": ["internal-db", 3]}) == {
        "a": ["[REDACTED]", 3]
    }
    with pytest.raises(RedactionError, match=r"llm.redact_patterns\[0\]"):
        Redactor(["(unclosed"])
