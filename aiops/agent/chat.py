"""The chat model the agent may consult, as a Protocol (aiops.integrations.llm implements it)."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class ModelError(Exception):
    """The model could not give a usable answer (HTTP error, time-out, refusal, bad output)."""


class ToolCall(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    arguments: str = Field(description="JSON text, as the model wrote it")


class ChatTurn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    refusal: str | None = None
    finish_reason: str | None = None
    tokens: int = Field(default=0, ge=0, description="total tokens the response says it used")


class ChatModel(Protocol):
    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None,
        response_schema: dict[str, Any] | None,
        max_tokens: int,
        timeout_s: float | None = None,
    ) -> ChatTurn:
        """One chat completion. Raises ModelError on any failure, including a call that takes
        longer than `timeout_s` (None: the implementation's own timeout). Implementations redact
        secrets from everything they send."""
        ...
