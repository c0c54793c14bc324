"""The model's advice: the LLM loop that runs after the deterministic report, when a model is set.

    report ──(hypotheses?)── llm_start ── llm_step ⇄ llm_tools
                                              │
                                 llm_finalize / fallback ── END

The model may call read-only tools, then answers with a ranking of the deterministic hypotheses
and a summary. It may only re-order hypotheses the ranking produced (never name another target),
put a hypothesis first only when the ranking found it close to the top, and rewrite the summary.
Every failure (HTTP error, refusal, invalid answer, token budget, time) keeps the deterministic
report, with a note saying why.

Time: each model call gets the LLM's own timeout, cut to what is left of the investigation's
deadline (the activity's time limit) less `finish_reserve_s`; when less than
`min_model_call_s` is left, the loop stops and the deterministic report stands. So a slow model
never makes the investigation miss its activity's time limit.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

from langgraph.graph import END, StateGraph
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiops.agent.chat import ChatModel, ChatTurn, ModelError
from aiops.agent.ports import ClusterReader, MetricsSource
from aiops.agent.prompts import SYSTEM, user_message, verdict_schema
from aiops.agent.tools import TOOL_SPECS, ReadOnlyTools
from aiops.domain import Incident, RcaReport


@dataclass(frozen=True)
class AdviceConfig:
    max_iterations: int = 4  # model calls with tools before it must answer
    use_tools: bool = True  # base models (no tool calling) answer straight away
    token_budget: int = 20_000
    max_completion_tokens: int = 1024
    tool_output_chars: int = 4000
    prompt_evidence: int = 3  # evidence lines per hypothesis shown to the model
    summary_max_chars: int = 600
    # The model may put a hypothesis first only if the ranking gave it at least this share of
    # the top hypothesis' confidence: it breaks near-ties, it does not overturn clear evidence.
    rerank_min_share: float = 0.5
    # Kept free before the deadline for what follows the model (the report, the activity's reply).
    finish_reserve_s: float = 2.0
    # A model call with less time than this is not started: an answer cut off is no answer.
    min_model_call_s: float = 1.0


class AdviceState(TypedDict, total=False):
    """The graph state the advice reads and writes (the agent's state extends it)."""

    incident: Incident
    namespace: str
    anomaly_time: float
    deterministic: RcaReport
    deadline: float | None  # time.monotonic() instant by which the investigation must be done
    messages: list[dict[str, Any]]
    iterations: int
    tokens: int
    turn: ChatTurn
    llm_error: str
    tool_calls: int
    report: RcaReport


class Verdict(BaseModel):
    """The model's answer. Anything else in it (an 'actions' field, say) makes it invalid."""

    model_config = ConfigDict(extra="forbid")

    ranking: list[str] = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=2000)


Finish = Literal["__end__"]  # langgraph.graph.END, spelled out so routers stay typed
_WORD = re.compile(r"[A-Za-z]{2,}")
_SPECIAL_TOKEN = re.compile(r"<\|[^|]*\|>")


def _estimate_tokens(messages: list[dict[str, Any]]) -> int:
    return len(json.dumps(messages)) // 3 + 16


def _strip_fence(text: str) -> str:
    if text.startswith("```"):
        text = text.strip("`")
        text = text.split("\n", 1)[1] if "\n" in text else text
    return text.strip()


@dataclass
class Advisor:
    """The advice nodes, bound to the model and the read-only sources its tools use."""

    llm: ChatModel
    metrics: MetricsSource
    cluster: ClusterReader | None
    config: AdviceConfig
    monotonic: Callable[[], float] = time.monotonic

    def start(self, state: AdviceState) -> AdviceState:
        det = state["deterministic"]
        content = user_message(
            state["incident"],
            state["namespace"],
            det.hypotheses,
            det.summary,
            evidence_limit=self.config.prompt_evidence,
        )
        return {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": content},
            ],
            "iterations": 0,
            "tokens": 0,
            "tool_calls": 0,
        }

    def _call_timeout(self, state: AdviceState) -> float | str | None:
        """The time this model call may take (None: the client's own timeout), or why none."""
        deadline = state.get("deadline")
        if deadline is None:
            return None
        left = deadline - self.monotonic() - self.config.finish_reserve_s
        if left < self.config.min_model_call_s:
            return (
                f"no time left for the model ({max(left, 0.0):.1f} s before the investigation's "
                f"time limit, {state.get('iterations', 0)} call(s) made)"
            )
        return left

    def step(self, state: AdviceState) -> AdviceState:
        cfg = self.config
        messages = state["messages"]
        used = state.get("tokens", 0)
        may_use_tools = cfg.use_tools and state.get("iterations", 0) < cfg.max_iterations
        offered = TOOL_SPECS if may_use_tools else []
        left = cfg.token_budget - used - _estimate_tokens([*messages, *offered])
        if left < 64:
            return {"llm_error": f"token budget of {cfg.token_budget} exhausted ({used} used)"}
        timeout = self._call_timeout(state)
        if isinstance(timeout, str):
            return {"llm_error": timeout}
        targets = [h.target for h in state["deterministic"].hypotheses]
        try:
            turn = self.llm.complete(
                messages,
                tools=offered or None,
                response_schema=verdict_schema(targets, cfg.summary_max_chars),
                max_tokens=min(cfg.max_completion_tokens, left),
                timeout_s=timeout,
            )
        except ModelError as exc:
            return {"llm_error": str(exc), "iterations": state.get("iterations", 0) + 1}
        except Exception as exc:  # whatever the client does, the report must survive
            return {"llm_error": f"the model client failed: {type(exc).__name__}: {exc}"[:300]}
        # A server that reports no usage is charged an estimate, so the budget still holds.
        used += turn.tokens or (
            _estimate_tokens([*messages, *offered])
            + len(turn.content or "") // 3
            + sum(len(c.arguments) // 3 + 8 for c in turn.tool_calls)
        )
        out: AdviceState = {
            "turn": turn,
            "tokens": used,
            "iterations": state.get("iterations", 0) + 1,
        }
        if used > cfg.token_budget:
            out["llm_error"] = f"token budget of {cfg.token_budget} exhausted ({used} used)"
        elif turn.refusal:
            out["llm_error"] = f"the model refused: {turn.refusal[:200]}"
        elif turn.tool_calls and not may_use_tools:
            out["llm_error"] = "the model kept calling tools after its last allowed iteration"
        return out

    @staticmethod
    def route_step(state: AdviceState) -> Literal["llm_tools", "llm_finalize", "fallback"]:
        if state.get("llm_error"):
            return "fallback"
        if state["turn"].tool_calls:
            return "llm_tools"
        return "llm_finalize"

    def tools(self, state: AdviceState) -> AdviceState:
        turn = state["turn"]
        tools = ReadOnlyTools(
            self.metrics,
            self.cluster,
            state["namespace"],
            state["anomaly_time"],
            max_chars=self.config.tool_output_chars,
        )
        messages = list(state["messages"])
        messages.append(
            {
                "role": "assistant",
                "content": turn.content,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in turn.tool_calls
                ],
            }
        )
        for c in turn.tool_calls:
            messages.append(
                {"role": "tool", "tool_call_id": c.id, "content": tools.call(c.name, c.arguments)}
            )
        return {
            "messages": messages,
            "tool_calls": state.get("tool_calls", 0) + len(turn.tool_calls),
        }

    def finalize(self, state: AdviceState) -> AdviceState:
        det = state["deterministic"]
        raw = (state["turn"].content or "").strip()
        try:
            verdict = Verdict.model_validate_json(_strip_fence(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "answer"
            return {"llm_error": f"the model's answer is not valid ({where}: {first['msg']})"}
        if len(_WORD.findall(_SPECIAL_TOKEN.sub(" ", verdict.summary))) < 3:
            return {"llm_error": "the model's summary is not an explanation (fewer than 3 words)"}
        by_target = {h.target: h for h in det.hypotheses}
        unknown = [t for t in verdict.ranking if t not in by_target]
        if unknown:
            return {
                "llm_error": f"the model ranked {', '.join(unknown)}, which the evidence does not "
                "support (not among the deterministic hypotheses)"
            }
        order = list(dict.fromkeys(verdict.ranking))
        order += [h.target for h in det.hypotheses if h.target not in order]
        new_top, old_top = by_target[order[0]], det.hypotheses[0]
        if new_top is not old_top and new_top.confidence < self.config.rerank_min_share * (
            old_top.confidence
        ):
            return {
                "llm_error": f"the model put {new_top.target} ({new_top.confidence:.0%}) first, "
                f"above {old_top.target} ({old_top.confidence:.0%}); the evidence is too far apart"
            }
        note = (
            f"model advice: {state.get('iterations', 0)} call(s), {state.get('tool_calls', 0)} "
            f"tool call(s), {state.get('tokens', 0)} tokens"
        )
        if order[0] != old_top.target:
            note += f"; re-ranked {new_top.target} above {old_top.target}"
        report = det.model_copy(
            update={
                "hypotheses": [by_target[t] for t in order],
                "evidence_ranking": [h.target for h in det.hypotheses],
                "summary": " ".join(verdict.summary.split())[:1000],
                "generated_by": "llm",
                "finished_at": datetime.now(UTC),
                "notes": [*det.notes, note],
            }
        )
        return {"report": report}

    @staticmethod
    def route_finalize(state: AdviceState) -> Literal["fallback"] | Finish:
        return "fallback" if state.get("llm_error") else "__end__"

    @staticmethod
    def fallback(state: AdviceState) -> AdviceState:
        det = state["deterministic"]
        why = state.get("llm_error", "unknown")
        note = f"model advice unused, deterministic report kept: {why}"
        report = det.model_copy(
            update={"notes": [*det.notes, note], "finished_at": datetime.now(UTC)}
        )
        return {"report": report}

    @staticmethod
    def route_report(state: AdviceState) -> Literal["llm_start"] | Finish:
        return "llm_start" if state["deterministic"].hypotheses else "__end__"


def add_advice(graph: StateGraph[Any, None, Any, Any], advisor: Advisor, after: str) -> None:
    """The advice nodes and edges, entered from node `after` (which produced `deterministic`)."""
    graph.add_node("llm_start", advisor.start)
    graph.add_node("llm_step", advisor.step)
    graph.add_node("llm_tools", advisor.tools)
    graph.add_node("llm_finalize", advisor.finalize)
    graph.add_node("fallback", advisor.fallback)
    graph.add_conditional_edges(after, advisor.route_report, ["llm_start", END])
    graph.add_edge("llm_start", "llm_step")
    graph.add_conditional_edges(
        "llm_step", advisor.route_step, ["llm_tools", "llm_finalize", "fallback"]
    )
    graph.add_edge("llm_tools", "llm_step")
    graph.add_conditional_edges("llm_finalize", advisor.route_finalize, ["fallback", END])
    graph.add_edge("fallback", END)
