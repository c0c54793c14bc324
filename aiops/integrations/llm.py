"""An OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp, Ollama, ...) for the agent.

Implements aiops.agent.ChatModel. Everything sent is redacted first (built-in secret patterns plus
`llm.redact_patterns`); every failure (HTTP error, time-out, malformed answer) becomes ModelError,
which the agent turns into its deterministic report. No retries here: a failed model call is not
worth delaying the investigation for.
"""

from __future__ import annotations

from typing import Any

import openai

from aiops.agent.chat import ChatTurn, ModelError, ToolCall
from aiops.config import LlmSettings
from aiops.integrations.redact import Redactor


class OpenAiChat:
    def __init__(self, settings: LlmSettings, *, temperature: float = 0.0) -> None:
        if not settings.base_url:
            raise ValueError("llm.base_url is not set; set AIOPS_LLM__BASE_URL to use a model")
        key = settings.api_key.get_secret_value() if settings.api_key else "unused"
        self._client = openai.OpenAI(
            base_url=settings.base_url,
            api_key=key,
            timeout=settings.timeout_s,
            max_retries=0,
        )
        self._model = settings.model
        self._timeout_s = settings.timeout_s
        self._redactor = Redactor(settings.redact_patterns)
        self._temperature = temperature
        self.base_url = settings.base_url

    def redact_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in messages:
            m = dict(m)
            if isinstance(m.get("content"), str):
                m["content"] = self._redactor.text(m["content"])
            if m.get("tool_calls"):
                m["tool_calls"] = [self._redact_call(c) for c in m["tool_calls"]]
            out.append(m)
        return out

    def _redact_call(self, call: dict[str, Any]) -> dict[str, Any]:
        fn = dict(call["function"])
        fn["arguments"] = self._redactor.text(fn.get("arguments") or "")
        return {**call, "function": fn}

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None,
        response_schema: dict[str, Any] | None,
        max_tokens: int,
        timeout_s: float | None = None,
    ) -> ChatTurn:
        kwargs: dict[str, Any] = {
            "model": self._model,
            "messages": self.redact_messages(messages),
            "max_tokens": max_tokens,
            "temperature": self._temperature,
        }
        if timeout_s is not None:
            # The investigation's remaining time, when shorter than the configured timeout.
            kwargs["timeout"] = min(timeout_s, self._timeout_s)
        if tools:
            kwargs["tools"] = tools
        if response_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "rca_verdict", "schema": response_schema},
            }
        try:
            response = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError as exc:
            raise ModelError(f"the model at {self.base_url} timed out") from exc
        except openai.APIStatusError as exc:
            raise ModelError(
                f"the model at {self.base_url} answered HTTP {exc.status_code}"
            ) from exc
        except (openai.APIError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise ModelError(f"the model at {self.base_url} failed: {type(exc).__name__}") from exc
        if not getattr(response, "choices", None):
            raise ModelError(f"the model at {self.base_url} returned no choices")
        choice = response.choices[0]
        msg = choice.message
        usage = getattr(response, "usage", None)
        tokens = int(getattr(usage, "total_tokens", 0) or 0) if usage is not None else 0
        calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in (msg.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        return ChatTurn(
            content=msg.content,
            tool_calls=calls,
            refusal=getattr(msg, "refusal", None),
            finish_reason=choice.finish_reason,
            tokens=tokens,
        )
