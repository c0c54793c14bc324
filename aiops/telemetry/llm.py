"""Counts what the configured model costs: requests, tokens and their price, around any
ChatModel, so the agent and the OpenAI client stay unaware of metrics."""

from __future__ import annotations

from typing import Any

from aiops.agent.chat import ChatModel, ChatTurn, ModelError
from aiops.config import TelemetrySettings
from aiops.telemetry import metrics


class MeteredChat:
    def __init__(self, inner: ChatModel, model: str, cfg: TelemetrySettings) -> None:
        self.inner = inner
        self.model = model
        self.usd_per_1k = cfg.llm_usd_per_1k_tokens

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None,
        response_schema: dict[str, Any] | None,
        max_tokens: int,
    ) -> ChatTurn:
        try:
            turn = self.inner.complete(
                messages, tools=tools, response_schema=response_schema, max_tokens=max_tokens
            )
        except ModelError:
            metrics.LLM_REQUESTS.labels(self.model, "failed").inc()
            raise
        metrics.LLM_REQUESTS.labels(self.model, "succeeded").inc()
        metrics.LLM_TOKENS.labels(self.model).inc(turn.tokens)
        metrics.LLM_COST_USD.labels(self.model).inc(turn.tokens / 1000 * self.usd_per_1k)
        return turn
