"""The investigation graph: evidence → ranking → RcaReport, then (optionally) the model's advice.

    prepare ─┬─ gather_metrics ─┬─ rank ── report ──(llm?)── llm_step ⇄ llm_tools
             └─ gather_cluster ─┘             │                │
                                              END   llm_finalize / fallback ── END

The deterministic path needs no model. The model may only re-order hypotheses the deterministic
ranking produced and rewrite the summary; any failure keeps the deterministic report, with a note.
Nothing here mutates the cluster, and the report carries no actions.
"""

from __future__ import annotations

import asyncio
import json
import math
import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypedDict

import numpy as np
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiops.agent import nodescope
from aiops.agent.chat import ChatModel, ChatTurn, ModelError
from aiops.agent.cluster import ClusterFacts, bad_nodes, change_events, read_cluster
from aiops.agent.edges import ISTIO, EdgeProfile, GatheredEdges, gather_edges, neighbourhood
from aiops.agent.metrics import (
    GatheredMetrics,
    gather,
    rate_window,
    rate_window_s,
    workload_of_pod,
)
from aiops.agent.nodescope import NodeScope, node_hosts_of
from aiops.agent.ports import ClusterReader, MetricsSource
from aiops.agent.prompts import SYSTEM, user_message, verdict_schema
from aiops.agent.tools import TOOL_SPECS, ReadOnlyTools
from aiops.domain import Evidence, Hypothesis, Incident, RcaReport
from aiops.profiles import Assembly
from aiops.rca import (
    ChangeEvent,
    MetricsMatrix,
    RankConfig,
    RcaInputError,
    RcaRanking,
    ScoringConfig,
    metric_of,
    rank,
    service_of,
    summarise,
    to_hypotheses,
)
from aiops.rca.nodes import NodeSuspect, node_hypothesis, node_suspect

# Live queries run at steps down to a second, where the noise of a rate() between neighbouring
# samples is tiny and a 2 % move would count as many sigmas: a departure must be material, at
# least 3 x 5 % of the metric's level (the offline default floors the noise at 1 %).
LIVE_RANK = RankConfig(scoring=ScoringConfig(rel_floor=0.05))


@dataclass(frozen=True)
class AgentConfig:
    lookback_s: float = 1800.0  # normal period queried before the anomaly
    after_s: float = 600.0  # how far after the anomaly to query (capped at now)
    step_s: float = 15.0
    # An investigation that starts seconds after the alarm has little data past the anomaly: the
    # step shrinks (down to min_step_s) so the ranking still gets min_after_rows rows after it.
    min_after_rows: int = 8
    min_step_s: float = 1.0
    # At such fine steps the look-back is capped at this many rows (a p99 over every second of
    # half an hour costs Prometheus more than the whole rest of the investigation).
    max_lookback_rows: int = 600
    rank: RankConfig = field(default_factory=lambda: LIVE_RANK)
    hypotheses: int = 5
    log_tail_lines: int = 200
    log_evidence_lines: int = 3
    # Requests in the slowest 1 % of a rate window for a p99 latency to count fully (see
    # `tail_weights`): 5 means 500 requests in the window.
    p99_tail_requests: float = 5.0
    # Where the service graph's edges come from (None: not read).
    edge_profile: EdgeProfile | None = ISTIO
    # The model
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


@dataclass
class AgentDeps:
    metrics: MetricsSource
    cluster: ClusterReader | None = None
    llm: ChatModel | None = None
    config: AgentConfig = field(default_factory=AgentConfig)
    # The signals the cluster's metric profiles feed now (discovery); None: every shipped one.
    signals: Callable[[], Assembly] | None = None


class AgentState(TypedDict, total=False):
    incident: Incident
    namespace: str
    anomaly_time: float
    window_start: datetime
    window_end: datetime
    step_s: float
    started_at: datetime
    metrics: GatheredMetrics
    edges: GatheredEdges
    cluster: ClusterFacts
    changes: list[ChangeEvent]
    ranking: RcaRanking
    deterministic: RcaReport
    messages: list[dict[str, Any]]
    iterations: int
    tokens: int
    turn: ChatTurn
    llm_error: str
    tool_calls: int
    report: RcaReport
    node_scope: NodeScope | None
    notes: Annotated[list[str], operator.add]


# ---------------------------------------------------------------------------- deterministic


def _anomaly_time(incident: Incident) -> datetime:
    starts = [a.start for a in incident.anomalies]
    at = min(starts) if starts else incident.opened_at
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _namespace(incident: Incident) -> str:
    if incident.namespace:
        return incident.namespace
    for a in incident.anomalies:
        for key in ("namespace", "exported_namespace"):
            if a.series.get(key):
                return a.series[key]
    return "default"


def _aligned(ts: float, step: float) -> datetime:
    return datetime.fromtimestamp(math.floor(ts / step) * step, tz=UTC)


def query_step(after_s: float, cfg: AgentConfig) -> float:
    """The configured step, or a finer one (whole seconds) when fewer than `min_after_rows`
    rows would fall after the anomaly."""
    if after_s >= cfg.min_after_rows * cfg.step_s:
        return cfg.step_s
    return max(cfg.min_step_s, float(math.floor(max(after_s, 0.0) / cfg.min_after_rows)))


def _prepare(deps: AgentDeps, state: AgentState) -> AgentState:
    cfg = deps.config
    at = _anomaly_time(state["incident"]).timestamp()
    now = time.time()
    end = min(at + cfg.after_s, now)
    step = query_step(end - at, cfg)
    scope = nodescope.resolve(state["incident"], deps.metrics, datetime.fromtimestamp(at, tz=UTC))
    return {
        "namespace": scope.namespace
        if scope and scope.namespace
        else _namespace(state["incident"]),
        "node_scope": scope,
        "anomaly_time": at,
        "window_start": _aligned(at - min(cfg.lookback_s, cfg.max_lookback_rows * step), step),
        "window_end": _aligned(end, step),
        "step_s": step,
        "started_at": datetime.now(UTC),
        "notes": scope.notes if scope else [],
    }


def _gather_metrics(deps: AgentDeps, state: AgentState) -> AgentState:
    ns, start, end, step = (
        state["namespace"],
        state["window_start"],
        state["window_end"],
        state["step_s"],
    )
    assembly = deps.signals() if deps.signals is not None else None
    got = gather(
        deps.metrics, ns, start, end, step, signals=assembly.by_name() if assembly else None
    )
    profile = deps.config.edge_profile
    if profile is not None and assembly is not None and assembly.discovered:
        # the service graph of the first live profile that has one (none: no edges to read)
        graphs = [EdgeProfile.from_source(e) for e in assembly.edges]
        profile = graphs[0] if graphs else None
    if profile is None:
        return {"metrics": got, "edges": GatheredEdges([], {}), "notes": got.notes}
    # The call graph bounds the edges read: into the flagged services and their neighbours.
    near = neighbourhood(flagged_services(state["incident"]), got.call_graph)
    edges = gather_edges(
        deps.metrics, ns, near, start, end, step, rate_window(step), profile=profile
    )
    return {"metrics": got, "edges": edges, "notes": [*got.notes, *edges.notes]}


def _gather_cluster(deps: AgentDeps, state: AgentState) -> AgentState:
    if deps.cluster is None:
        note = "no Kubernetes access: ranked on metrics only"
        return {"cluster": ClusterFacts(), "notes": [note]}
    facts = read_cluster(deps.cluster, state["namespace"])
    return {"cluster": facts, "notes": facts.notes}


def _placement(state: AgentState) -> dict[str, list[str]]:
    merged: dict[str, set[str]] = {}
    for source in (state["metrics"].placement, state["cluster"].placement()):
        for svc, nodes in source.items():
            merged.setdefault(svc, set()).update(nodes)
    return {k: sorted(v) for k, v in merged.items()}


def _rank(deps: AgentDeps, state: AgentState) -> AgentState:
    at = state["anomaly_time"]
    changes = change_events(
        state["cluster"],
        state["namespace"],
        _placement(state),
        since=datetime.fromtimestamp(at - deps.config.rank.change_lookback_s, tz=UTC),
        until=state["window_end"] + timedelta(seconds=state["step_s"]),
    )
    matrix = state["metrics"].matrix
    notes: list[str] = []
    if matrix is None:
        ranking = RcaRanking(anomaly_time=at, alarm_time=at, ranked=[], notes=[])
        if changes:  # rank on the changes alone
            ranking = _rank_changes_only(changes, at)
    else:
        try:
            ranking = rank(
                matrix,
                at,
                call_graph=state["metrics"].call_graph,
                changes=changes,
                config=deps.config.rank,
                column_weights=tail_weights(
                    matrix, at, rate_window_s(state["step_s"]), deps.config.p99_tail_requests
                ),
                flagged=flagged_services(state["incident"]),
                edges=state["edges"].edges,
            )
        except RcaInputError as exc:
            notes.append(f"metrics could not be ranked: {exc}")
            ranking = _rank_changes_only(changes, at)
    return {"ranking": ranking, "changes": changes, "notes": notes + list(ranking.notes)}


def flagged_services(incident: Incident) -> set[str]:
    """The workloads the incident's anomalies are about (what the detector saw departing)."""
    out: set[str] = set()
    for a in incident.anomalies:
        for key in ("workload", "deployment"):
            if a.series.get(key):
                out.add(a.series[key])
        if a.series.get("pod"):
            out.add(workload_of_pod(a.series["pod"]))
    return out


def tail_weights(
    matrix: MetricsMatrix, at: float, window_s: float, full_weight_tail: float
) -> dict[str, float]:
    """How far each service's p99 latency can be trusted: a p99 over the rate window rests on
    the slowest 1 % of the requests in it, and at a few requests a second that is one or two
    requests, so one slow call moves it by half (seen in the lab: paymentservice's p99 at 2 rps
    outranked cartservice's memory leak). Full weight from `full_weight_tail` requests in the
    tail, less below; measured before the anomaly, where the fault cannot have changed it."""
    weights: dict[str, float] = {}
    before = matrix.times < at
    for column in matrix.columns:
        if metric_of(column) != "latency_p99":
            continue
        rate = f"{service_of(column)}_requests_rate"
        if rate not in matrix.columns or not before.any():
            continue
        values = matrix.values[before, matrix.columns.index(rate)]
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        tail = 0.01 * float(np.median(values)) * window_s
        weights[column] = min(1.0, tail / full_weight_tail)
    return weights


def _rank_changes_only(changes: list[ChangeEvent], at: float) -> RcaRanking:
    # A tiny empty matrix lets rank() score the changes with the usual weights and decay.
    times = [at - 60.0 * i for i in range(5, 0, -1)] + [at, at + 60.0]
    empty = MetricsMatrix.from_series(times, {})
    try:
        return rank(empty, at, changes=changes)
    except RcaInputError:
        return RcaRanking(anomaly_time=at, alarm_time=at, ranked=[], notes=[])


_ERROR_LINE = re.compile(r"error|exception|fatal|panic|fail|oom|refused|timed? ?out", re.I)


def _log_evidence(deps: AgentDeps, state: AgentState, service: str) -> tuple[list[Evidence], str]:
    """Error lines from one pod of the service (the one with most restarts)."""
    if deps.cluster is None:
        return [], ""
    facts = state["cluster"]
    pods = [p for p in facts.pods if facts.pod_workload(p) == service]
    if not pods:
        return [], ""
    pod = max(pods, key=lambda p: (p.restarts, p.name))
    try:
        text = deps.cluster.pod_logs(
            state["namespace"], pod.name, tail_lines=deps.config.log_tail_lines
        )
    except Exception as exc:
        return [], f"could not read logs of Pod/{state['namespace']}/{pod.name}: {exc}"
    lines = [ln.strip() for ln in text.splitlines() if _ERROR_LINE.search(ln)]
    source = f"Pod/{state['namespace']}/{pod.name}"
    return [
        Evidence(kind="log", summary=line[:300], source=source, weight=0.5)
        for line in lines[-deps.config.log_evidence_lines :]
    ], ""


def _pod_evidence(state: AgentState, service: str) -> list[Evidence]:
    facts = state["cluster"]
    out = []
    for p in facts.pods:
        if facts.pod_workload(p) != service:
            continue
        waiting = [c.waiting_reason for c in p.containers if c.waiting_reason]
        if p.restarts or waiting or p.phase not in ("Running", "Succeeded"):
            what = f"pod {p.name} on {p.node or '?'}: {p.phase}, {p.restarts} restart(s)"
            if waiting:
                what += f", waiting: {', '.join(waiting)}"
            out.append(Evidence(kind="pod", summary=what, source=f"Pod/{p.namespace}/{p.name}"))
    return out[:2]


def _node_suspect(deps: AgentDeps, state: AgentState, ranking: RcaRanking) -> NodeSuspect | None:
    return node_suspect(
        ranking,
        _placement(state),
        bad_nodes(state["cluster"]),
        state["metrics"].node_matrix,
        deps.config.rank.scoring,
    )


def _report(deps: AgentDeps, state: AgentState) -> AgentState:
    ranking = state["ranking"]
    ns = state["namespace"]
    sources = {**state["metrics"].sources, **state["edges"].sources}
    hyps = to_hypotheses(ranking, sources=sources, namespace=ns, limit=deps.config.hypotheses)
    notes: list[str] = []
    summary = summarise(ranking)
    scope = state.get("node_scope")
    if scope is not None:
        hyps, summary = nodescope.node_report(
            scope,
            ranking,
            nodes=state["metrics"].node_matrix,
            at=ranking.anomaly_time,
            placement=_placement(state),
            unhealthy=bad_nodes(state["cluster"]),
            sources=state["metrics"].node_columns,
            workload_sources=state["metrics"].sources,
            namespace=ns,
            scoring=deps.config.rank.scoring,
            limit=deps.config.hypotheses,
        )
    elif hyps:
        top = ranking.ranked[0]
        extra = _pod_evidence(state, top.service)
        logs, note = _log_evidence(deps, state, top.service)
        if note:
            notes.append(note)
        first = hyps[0]
        hyps[0] = first.model_copy(update={"evidence": [*first.evidence, *extra, *logs]})
        suspect = _node_suspect(deps, state, ranking)
        if suspect is not None:
            node_hyp = node_hypothesis(
                suspect,
                ranking,
                why=bad_nodes(state["cluster"]).get(suspect.node),
                sources=state["metrics"].node_columns.get(suspect.node, {}),
                namespace=ns,
            )
            hyps.insert(0, node_hyp)
            facts = "; ".join(e.summary for e in node_hyp.evidence[:2])
            summary = (
                f"Node {suspect.node} is the most likely root cause (node fault, "
                f"{node_hyp.confidence:.0%}): {facts}. Workloads on other nodes are not affected."
            )
    hyps = [_with_alarms(h, state["incident"]) for h in hyps]
    report = RcaReport(
        incident_id=state["incident"].id,
        hypotheses=hyps,
        summary=summary,
        generated_by="deterministic",
        started_at=state["started_at"],
        finished_at=datetime.now(UTC),
        notes=_dedupe([*state.get("notes", []), *notes]),
    )
    return {"deterministic": report, "report": report, "notes": notes}


def _with_alarms(h: Hypothesis, incident: Incident) -> Hypothesis:
    """The incident's own anomalies about this target, citing the detector's query."""
    extra = [
        Evidence(
            kind="alert" if a.source == "alertmanager" else "metric",
            summary=f"{a.signal} of {a.entity} went {a.direction.value} (score {a.score:.1f})",
            source=a.query,
            observed_at=a.start,
            value=a.value,
            baseline=a.baseline,
        )
        for a in incident.anomalies
        if a.entity == h.target or (h.target_kind == "Node" and h.target in node_hosts_of(a))
    ]
    return h.model_copy(update={"evidence": [*h.evidence, *extra]}) if extra else h


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------------- the model


class Verdict(BaseModel):
    """The model's answer. Anything else in it (an 'actions' field, say) makes it invalid."""

    model_config = ConfigDict(extra="forbid")

    ranking: list[str] = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=2000)


def _estimate_tokens(messages: list[dict[str, Any]]) -> int:
    return len(json.dumps(messages)) // 3 + 16


def _llm_start(deps: AgentDeps, state: AgentState) -> AgentState:
    det = state["deterministic"]
    content = user_message(
        state["incident"],
        state["namespace"],
        det.hypotheses,
        det.summary,
        evidence_limit=deps.config.prompt_evidence,
    )
    return {
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}],
        "iterations": 0,
        "tokens": 0,
        "tool_calls": 0,
    }


def _llm_step(deps: AgentDeps, state: AgentState) -> AgentState:
    assert deps.llm is not None
    cfg = deps.config
    messages = state["messages"]
    used = state.get("tokens", 0)
    may_use_tools = cfg.use_tools and state.get("iterations", 0) < cfg.max_iterations
    offered = TOOL_SPECS if may_use_tools else []
    left = cfg.token_budget - used - _estimate_tokens([*messages, *offered])
    if left < 64:
        return {"llm_error": f"token budget of {cfg.token_budget} exhausted ({used} used)"}
    targets = [h.target for h in state["deterministic"].hypotheses]
    try:
        turn = deps.llm.complete(
            messages,
            tools=offered or None,
            response_schema=verdict_schema(targets, cfg.summary_max_chars),
            max_tokens=min(cfg.max_completion_tokens, left),
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
    out: AgentState = {"turn": turn, "tokens": used, "iterations": state.get("iterations", 0) + 1}
    if used > cfg.token_budget:
        out["llm_error"] = f"token budget of {cfg.token_budget} exhausted ({used} used)"
    elif turn.refusal:
        out["llm_error"] = f"the model refused: {turn.refusal[:200]}"
    elif turn.tool_calls and not may_use_tools:
        out["llm_error"] = "the model kept calling tools after its last allowed iteration"
    return out


def _route_step(state: AgentState) -> Literal["llm_tools", "llm_finalize", "fallback"]:
    if state.get("llm_error"):
        return "fallback"
    if state["turn"].tool_calls:
        return "llm_tools"
    return "llm_finalize"


def _llm_tools(deps: AgentDeps, state: AgentState) -> AgentState:
    turn = state["turn"]
    tools = ReadOnlyTools(
        deps.metrics,
        deps.cluster,
        state["namespace"],
        state["anomaly_time"],
        max_chars=deps.config.tool_output_chars,
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
    return {"messages": messages, "tool_calls": state.get("tool_calls", 0) + len(turn.tool_calls)}


def _llm_finalize(deps: AgentDeps, state: AgentState) -> AgentState:
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
    if new_top is not old_top and new_top.confidence < deps.config.rerank_min_share * (
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
            "summary": " ".join(verdict.summary.split())[:1000],
            "generated_by": "llm",
            "finished_at": datetime.now(UTC),
            "notes": [*det.notes, note],
        }
    )
    return {"report": report}


_WORD = re.compile(r"[A-Za-z]{2,}")
_SPECIAL_TOKEN = re.compile(r"<\|[^|]*\|>")


def _strip_fence(text: str) -> str:
    if text.startswith("```"):
        text = text.strip("`")
        text = text.split("\n", 1)[1] if "\n" in text else text
    return text.strip()


Finish = Literal["__end__"]  # langgraph.graph.END, spelled out so routers stay typed


def _route_finalize(state: AgentState) -> Literal["fallback"] | Finish:
    return "fallback" if state.get("llm_error") else "__end__"


def _fallback(deps: AgentDeps, state: AgentState) -> AgentState:
    det = state["deterministic"]
    note = f"model advice unused, deterministic report kept: {state.get('llm_error', 'unknown')}"
    report = det.model_copy(update={"notes": [*det.notes, note], "finished_at": datetime.now(UTC)})
    return {"report": report}


def _route_report(deps: AgentDeps) -> Callable[[AgentState], Literal["llm_start"] | Finish]:
    def route(state: AgentState) -> Literal["llm_start"] | Finish:
        if deps.llm is None or not state["deterministic"].hypotheses:
            return "__end__"
        return "llm_start"

    return route


# ---------------------------------------------------------------------------- assembly


def build_graph(deps: AgentDeps) -> CompiledStateGraph[AgentState, None, AgentState, AgentState]:
    g: StateGraph[AgentState, None, AgentState, AgentState] = StateGraph(AgentState)

    def bind(fn: Any) -> Any:
        def node(state: AgentState) -> AgentState:
            result: AgentState = fn(deps, state)
            return result

        node.__name__ = fn.__name__.lstrip("_")
        return node

    g.add_node("prepare", bind(_prepare))
    g.add_node("gather_metrics", bind(_gather_metrics))
    g.add_node("gather_cluster", bind(_gather_cluster))
    g.add_node("rank", bind(_rank))
    g.add_node("report", bind(_report))
    g.add_node("llm_start", bind(_llm_start))
    g.add_node("llm_step", bind(_llm_step))
    g.add_node("llm_tools", bind(_llm_tools))
    g.add_node("llm_finalize", bind(_llm_finalize))
    g.add_node("fallback", bind(_fallback))

    g.add_edge(START, "prepare")
    g.add_edge("prepare", "gather_metrics")
    g.add_edge("prepare", "gather_cluster")
    g.add_edge(["gather_metrics", "gather_cluster"], "rank")
    g.add_edge("rank", "report")
    g.add_conditional_edges("report", _route_report(deps), ["llm_start", END])
    g.add_edge("llm_start", "llm_step")
    g.add_conditional_edges("llm_step", _route_step, ["llm_tools", "llm_finalize", "fallback"])
    g.add_edge("llm_tools", "llm_step")
    g.add_conditional_edges("llm_finalize", _route_finalize, ["fallback", END])
    g.add_edge("fallback", END)
    return g.compile()


async def ainvestigate(incident: Incident, deps: AgentDeps) -> RcaReport:
    """`investigate` off the event loop (the tools are blocking HTTP clients)."""
    return await asyncio.to_thread(investigate, incident, deps)


def investigate(incident: Incident, deps: AgentDeps) -> RcaReport:
    """Run the graph on one incident and return its report (never raises on a model failure)."""
    graph = build_graph(deps)
    # Each model round trip is two graph steps; leave room for the whole bounded loop.
    limit = 20 + 3 * (deps.config.max_iterations + 1)
    final = graph.invoke({"incident": incident}, {"recursion_limit": limit})
    report: RcaReport = final["report"]
    return report
