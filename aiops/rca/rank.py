"""Rank services as root-cause candidates: anomaly magnitude, onset order, topology, changes.

Entry point: `rank(matrix, anomaly_time, call_graph=..., changes=...)`. Pure: numpy in, pydantic
out, no I/O, deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from aiops.rca.blame import EdgeScores, score_edges
from aiops.rca.classify import Family, classify, family_of
from aiops.rca.edges import EdgeConfig, EdgeSeries
from aiops.rca.models import (
    ChangeEvent,
    ChangeEvidence,
    ChangeKind,
    EdgeEvidence,
    MetricEvidence,
    MetricsMatrix,
    RcaRanking,
    ServiceScore,
    metric_of,
    service_of,
)
from aiops.rca.onset import estimate_onset
from aiops.rca.scoring import (
    MetricScores,
    ScoringConfig,
    peer_scores,
    score_metrics,
    typical_spread,
)
from aiops.rca.topology import random_walk_scores


@dataclass(frozen=True)
class RankConfig:
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    # When the given time is a detector's alarm (after the real start), look this far back for
    # the multivariate change point and rank from there. None: the time given is the onset.
    onset_search_s: float | None = None
    # Share of a service's score that comes from metrics beyond its strongest one (corroboration
    # by a second metric family).
    breadth: float = 0.0
    # Bonus, in peer-score units, for the service(s) whose first departure came earliest.
    onset_bonus: float = 0.0
    onset_min_peer: float = 2.0  # only services that clearly departed compete on onset
    topology_weight: float = 2.0
    change_weight: float = 3.0
    change_lookback_s: float = 3600.0
    change_decay_s: float = 900.0
    # A change to a service whose own metrics did not clearly depart (best weighted peer score
    # below `change_min_peer`) counts this much: a release that changed nothing measurable is a
    # weak suspect, or every benign rollout near a fault would take the blame for it.
    quiet_change_weight: float = 0.2
    change_min_peer: float = 2.0
    temperature: float = 2.0
    # Latency propagates to callers and neighbours; CPU or memory saturation mostly does not. A
    # latency metric's standing counts this much against a resource metric's.
    symptom_weight: float = 0.7
    # Node-level metrics (node_*) describe the host the pod shares with others: weaker evidence
    # against the service itself.
    node_weight: float = 0.7
    # Errors and latency propagate from callee to caller. A caller's error/latency standing is
    # multiplied by this when one of its callees departed at the same time on a metric that is
    # a fault, not a symptom of its callers (resources, restarts, availability, its own errors
    # or latency; not its request rate). 1.0: off.
    explained_weight: float = 0.3
    recovering_weight: float = 0.0  # errors/latency that improved
    explained_min_peer: float = 2.0
    explained_slack_s: float = 60.0  # the callee may have departed this much after the caller
    evidence_per_service: int = 5
    edges: EdgeConfig = field(default_factory=EdgeConfig)


_CHANGE_STRENGTH = {
    ChangeKind.ROLLOUT: 1.0,
    ChangeKind.CONFIG_CHANGE: 1.0,
    ChangeKind.OOM_KILL: 0.8,
    ChangeKind.RESTART: 0.6,
    ChangeKind.CORDON: 0.6,
    ChangeKind.SCALE: 0.3,
}


def rank(
    matrix: MetricsMatrix,
    anomaly_time: float,
    *,
    call_graph: Iterable[tuple[str, str]] = (),
    changes: Sequence[ChangeEvent] = (),
    config: RankConfig | None = None,
    column_weights: Mapping[str, float] | None = None,
    flagged: Collection[str] = (),
    edges: Sequence[EdgeSeries] = (),
) -> RcaRanking:
    """`column_weights` scales single columns' standing (1.0 when absent): what the caller
    knows about a column's reliability that the matrix does not show (e.g. a p99 taken over
    too few requests to mean much). `flagged`: services a detector already found departing;
    their changes are never discounted as quiet (early in a fault the ranking's own standing
    may not show the departure yet)."""
    cfg = config or RankConfig()
    alarm_time = anomaly_time
    notes: list[str] = []
    if cfg.onset_search_s:
        anomaly_time = estimate_onset(
            matrix,
            alarm_time,
            search_back_s=cfg.onset_search_s,
            after_s=cfg.scoring.window_s,
        )
        if anomaly_time != alarm_time:
            notes.append(f"onset estimated {alarm_time - anomaly_time:.0f} s before the alarm time")
    scores = score_metrics(matrix, anomaly_time, cfg.scoring)
    columns = matrix.columns
    edge_evidence: dict[str, list[EdgeEvidence]] = {}
    callee_slow: dict[tuple[str, str], bool] = {}
    if edges:
        scored = score_edges(
            edges,
            anomaly_time,
            window_s=cfg.scoring.window_s,
            level_s=cfg.scoring.level_s or cfg.scoring.window_s,
            onset_z=cfg.scoring.onset_z,
            lookback_s=cfg.scoring.baseline_s,
            config=cfg.edges,
            suspects=set(matrix.services) or None,
        )
        columns, scores = with_edges(columns, scores, scored, cfg.scoring)
        edge_evidence, callee_slow = scored.evidence, scored.callee_slow
    by_service = _group(columns)

    per_family = {Family.LATENCY: cfg.symptom_weight, Family.NODE: cfg.node_weight}
    family_weight = [
        per_family.get(family_of(metric_of(c)), 1.0) * (column_weights or {}).get(c, 1.0)
        for c in columns
    ]
    graph = sorted({*call_graph, *((e.client, e.server) for e in edges)})
    explained = (
        explained_by_callees(columns, scores, by_service, graph, cfg, callee_slow)
        if cfg.explained_weight < 1.0
        else {}
    )
    # Errors or latency that fell are a service getting better (often from an earlier incident
    # still in the look-back): no evidence against it.
    for j, c in enumerate(columns):
        metric = metric_of(c)
        if family_of(metric) in _SYMPTOMS and not _bad_direction(metric, int(scores.direction[j])):
            family_weight[j] *= cfg.recovering_weight
    for svc, callees in sorted(explained.items()):
        notes.append(
            f"errors/latency of {svc} discounted: its callee(s) {', '.join(callees)} "
            "departed at the same time"
        )
        for j in by_service[svc]:
            if family_of(metric_of(columns[j])) in _SYMPTOMS:
                family_weight[j] *= cfg.explained_weight
    anomaly: dict[str, float] = {}
    onset: dict[str, float | None] = {}
    for svc, idx in by_service.items():
        peers = sorted(
            (
                float(scores.peer[j]) * (family_weight[j] if scores.peer[j] > 0 else 1.0)
                for j in idx
                if math.isfinite(scores.peer[j])
            ),
            reverse=True,
        )
        if not peers:
            anomaly[svc] = float("-inf")
            onset[svc] = None
            continue
        anomaly[svc] = peers[0] + cfg.breadth * sum(max(p, 0.0) for p in peers[1:3])
        strong = [
            scores.onset[j]
            for j in idx
            if math.isfinite(scores.onset[j]) and scores.peer[j] >= cfg.onset_min_peer
        ]
        onset[svc] = float(min(strong)) if strong else None

    finite = [v for v in anomaly.values() if math.isfinite(v)]
    if not finite:
        notes.append("no metric could be scored: every column lacks a usable baseline")
    lowest = min(finite) if finite else 0.0
    total = {s: (v if math.isfinite(v) else lowest - 1.0) for s, v in anomaly.items()}

    onsets = [o for o in onset.values() if o is not None]
    first_onset = min(onsets) if onsets else None
    if cfg.onset_bonus and first_onset is not None:
        for s, o in onset.items():
            if o is not None and o <= first_onset:
                total[s] += cfg.onset_bonus

    topo: dict[str, float] = {}
    if graph and cfg.topology_weight:
        positive = {
            s: math.exp(min(max(v, -20.0), 20.0) / cfg.temperature) for s, v in total.items()
        }
        topo = random_walk_scores(list(total), graph, positive)
        if topo:
            top = max(topo.values())
            for s in total:
                topo[s] = topo.get(s, 0.0) / top if top > 0 else 0.0
                total[s] += cfg.topology_weight * topo[s]
        else:
            notes.append("call graph given but none of its edges joins two services in the metrics")

    change_ev: dict[str, list[ChangeEvidence]] = {}
    for ev in changes:
        dt = anomaly_time - ev.timestamp
        if dt > cfg.change_lookback_s or dt < -cfg.scoring.window_s:
            continue
        bonus = (
            cfg.change_weight
            * _CHANGE_STRENGTH[ev.kind]
            * math.exp(-max(dt, 0.0) / cfg.change_decay_s)
        )
        targets = [ev.service, *ev.affects]
        for i, target in enumerate(targets):
            b = bonus if i == 0 else bonus * 0.5
            own = anomaly.get(target, float("-inf"))
            if math.isfinite(own) and own < cfg.change_min_peer and target not in flagged:
                b *= cfg.quiet_change_weight
                notes.append(
                    f"{ev.kind.value} of {target} discounted: its own metrics stayed "
                    f"quiet (peer score {own:.1f} < {cfg.change_min_peer:g})"
                )
            if target not in total:
                if i > 0 or ev.kind is ChangeKind.CORDON:
                    continue  # a node is not a service; its workloads are in `affects`
                # A change to something without metrics is still a suspect: rank it on the
                # change alone, below every service with metrics but no change.
                notes.append(f"{ev.kind.value} of {target}, which has no metrics: ranked on it")
                total[target] = lowest - 1.0
                anomaly[target] = float("-inf")
                onset[target] = None
                by_service[target] = []
            change_ev.setdefault(target, []).append(
                ChangeEvidence(
                    kind=ev.kind, at=ev.timestamp, source=ev.source, detail=ev.detail, bonus=b
                )
            )
    change_total = {s: sum(c.bonus for c in evs) for s, evs in change_ev.items()}
    for s, b in change_total.items():
        total[s] += b

    order = sorted(total, key=lambda s: (-total[s], s))
    top_score = total[order[0]] if order else 0.0
    weights = {s: math.exp(max((total[s] - top_score) / cfg.temperature, -50.0)) for s in order}
    norm = sum(weights.values()) or 1.0

    ranked: list[ServiceScore] = []
    for s in order:
        # Classify on every metric of the service that departed (plus the strongest few, which
        # are reported); the rest cannot change the fault type.
        departed = [j for j in by_service[s] if scores.score[j] >= cfg.scoring.onset_z]
        evidence = _evidence(
            columns, scores, by_service[s], max(len(departed), cfg.evidence_per_service)
        )
        ranked.append(
            ServiceScore(
                service=s,
                score=round(total[s], 6),
                confidence=min(1.0, weights[s] / norm),
                fault=classify(evidence, change_ev.get(s, [])),
                onset=onset[s],
                anomaly_score=anomaly[s] if math.isfinite(anomaly[s]) else 0.0,
                topology_score=topo.get(s, 0.0),
                change_score=change_total.get(s, 0.0),
                evidence=evidence[: cfg.evidence_per_service],
                changes=change_ev.get(s, []),
                edges=edge_evidence.get(s, [])[: cfg.evidence_per_service],
            )
        )
    return RcaRanking(anomaly_time=anomaly_time, alarm_time=alarm_time, ranked=ranked, notes=notes)


_SYMPTOMS = frozenset({Family.ERRORS, Family.LATENCY})
# A callee's request rate follows its callers (a failing caller calls less): no explanation.
_NOT_A_CAUSE = frozenset({Family.TRAFFIC, Family.OTHER})
# What rises with a service's load (the vocabulary's `load: follows`): its latency, CPU, memory
# and its node. A callee serving this many times its normal request rate (the detector's
# LOAD_EXPLAINS, aiops.detect.load) is working harder for its callers, not failing them, so
# these rises of it explain nothing of their trouble: a surge into the frontend raised its
# callee's p99 by a third and the frontend's own latency and errors were discounted for it.
LOAD_EXPLAINS = 1.25
_FOLLOWS_LOAD = frozenset({Family.LATENCY, Family.CPU, Family.MEMORY, Family.NODE})


def _loaded(columns: Sequence[str], scores: MetricScores, idx: Sequence[int]) -> bool:
    """The service's request rate is LOAD_EXPLAINS times its normal level or more."""
    return any(
        family_of(metric_of(columns[j])) is Family.TRAFFIC
        and scores.baseline[j] > 0
        and scores.value[j] >= LOAD_EXPLAINS * scores.baseline[j]
        for j in idx
    )


def explained_by_callees(
    columns: Sequence[str],
    scores: MetricScores,
    by_service: dict[str, list[int]],
    edges: Sequence[tuple[str, str]],
    cfg: RankConfig,
    callee_slow: Mapping[tuple[str, str], bool] | None = None,
) -> dict[str, list[str]]:
    """caller -> its callees that departed (a fault, not a symptom of the caller) no later than
    `explained_slack_s` after the caller's first departure. Where the edge itself was measured
    (`callee_slow`), it decides: a callee that spent no more time on the caller's calls, returned
    no more failures, and whose end of the edge is not blamed, explains nothing of the caller's
    trouble. A callee under extra load (LOAD_EXPLAINS) explains its callers' trouble only by
    what load does not explain (errors, restarts, ...)."""
    z = cfg.scoring.onset_z

    def first_departure(svc: str, families: frozenset[Family] | None) -> float | None:
        times = [
            float(scores.onset[j])
            for j in by_service.get(svc, [])
            if math.isfinite(scores.onset[j])
            and math.isfinite(scores.peer[j])
            and scores.score[j] >= z
            and scores.peer[j] >= cfg.explained_min_peer
            and (families is None or family_of(metric_of(columns[j])) in families)
            and _bad_direction(metric_of(columns[j]), int(scores.direction[j]))
        ]
        return min(times) if times else None

    causes = frozenset(Family) - _NOT_A_CAUSE
    loaded = {s for s, idx in by_service.items() if _loaded(columns, scores, idx)}
    out: dict[str, list[str]] = {}
    for caller, callee in edges:
        if caller == callee or caller not in by_service or callee not in by_service:
            continue
        if callee_slow is not None and not callee_slow.get((caller, callee), True):
            continue
        mine = first_departure(caller, _SYMPTOMS)
        theirs = first_departure(callee, causes - _FOLLOWS_LOAD if callee in loaded else causes)
        if mine is not None and theirs is not None and theirs <= mine + cfg.explained_slack_s:
            out.setdefault(caller, []).append(callee)
    return {k: sorted(set(v)) for k, v in out.items()}


def _bad_direction(metric: str, direction: int) -> bool:
    """Whether a move is the harmful one: up, except success rates and availability (down)."""
    name = metric.lower()
    if "unavail" in name or "not_ready" in name:
        return direction > 0
    if "success" in name or "avail" in name or "ready" in name:
        return direction < 0
    return direction > 0


def _group(columns: Sequence[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for j, c in enumerate(columns):
        groups.setdefault(service_of(c), []).append(j)
    return groups


def _evidence(
    columns: Sequence[str], scores: MetricScores, idx: list[int], limit: int
) -> list[MetricEvidence]:
    usable = [j for j in idx if math.isfinite(scores.peer[j]) and math.isfinite(scores.score[j])]
    usable.sort(key=lambda j: -float(scores.peer[j]))
    out: list[MetricEvidence] = []
    for j in usable[:limit]:
        onset = float(scores.onset[j])
        base, val = float(scores.baseline[j]), float(scores.value[j])
        ratio = val / base if base > 0 and math.isfinite(val) else None
        out.append(
            MetricEvidence(
                column=columns[j],
                metric=metric_of(columns[j]),
                score=float(scores.score[j]),
                direction=int(scores.direction[j]),
                baseline=_num(scores.baseline[j]),
                scale=_num(scores.scale[j]),
                value=_num(scores.value[j]),
                onset=onset if math.isfinite(onset) else None,
                ratio=ratio,
                peer_score=float(scores.peer[j]),
            )
        )
    return out


def _num(x: np.floating | float) -> float:
    v = float(x)
    return v if math.isfinite(v) else 0.0


def with_edges(
    columns: tuple[str, ...], scores: MetricScores, edges: EdgeScores, cfg: ScoringConfig
) -> tuple[tuple[str, ...], MetricScores]:
    """The metric scores with the service graph's pseudo-columns appended (their peer standing
    among themselves; the metrics' own standing is left as it was).

    Most services' pseudo-columns sit at zero (no edge of theirs departed), so their own spread
    would make any departure a towering standing; they are measured in the unit the metrics'
    standing has, the spread a metric kind typically shows among services."""
    if not edges.columns:
        return columns, scores
    unit = typical_spread(columns, scores.score, cfg)
    peer = (
        peer_scores(edges.columns, edges.score, cfg, floor=unit)
        if cfg.peer
        else np.log1p(edges.score)
    )
    return columns + edges.columns, MetricScores(
        score=np.concatenate([scores.score, edges.score]),
        direction=np.concatenate([scores.direction, np.ones(len(edges.columns))]),
        baseline=np.concatenate([scores.baseline, np.zeros(len(edges.columns))]),
        scale=np.concatenate([scores.scale, np.ones(len(edges.columns))]),
        value=np.concatenate([scores.value, edges.score]),
        onset=np.concatenate([scores.onset, edges.onset]),
        peer=np.concatenate([scores.peer, peer]),
    )
