"""Blame per service from the service graph's departed edges (measured in edges.py).

A departed edge points at one of its two ends. Which one is read from the rest of the graph, as
the single fault that best explains every departure: a network fault or a starved process shows on
most edges of its side of a service (the callee's inbound edges, or the caller's outbound ones),
and an edge departs by chance only rarely. Each side's log-likelihood ratio against "no fault"
counts its departed edges for it and its quiet ones against it, and an edge's two ends share its
departure by those odds: a hub with one slow callee among seven is not the cause, a service whose
every inbound edge slowed is, and a caller whose every outbound edge slowed is the common cause
of them all. The result is one pseudo-column per service and kind (`<service>_edge_gap`,
`<service>_edge_errors`, and the callee's own time `<service>_edge_server_latency`), scored like
a metric, so the ranking weighs them against the service's own metrics with the same peer
standing (see rank.py).

Where an edge shows that its callee spent no more time (server side flat), the callee does not
explain its caller's slowness, whatever its other metrics did: `EdgeScores.callee_slow` tells the
ranking so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from aiops.rca.edges import (
    EdgeConfig,
    EdgeMeasure,
    EdgeSeries,
    first_departure,
    measure_edges,
    one_way,
)
from aiops.rca.models import EdgeEvidence

FloatArray = npt.NDArray[np.float64]

# The pseudo-metrics an edge analysis adds per service (the family of `edge_*` is NETWORK).
GAP = "edge_gap"
ERRORS = "edge_errors"
SERVER = "edge_server_latency"  # family LATENCY: the callee's own time, a symptom that propagates


def is_edge_metric(metric: str) -> bool:
    """Whether a metric name is one of the service graph's pseudo-metrics."""
    return metric.startswith("edge_")


@dataclass(frozen=True)
class EdgeScores:
    """Per-service pseudo-columns in the shape of the metric scores, and the evidence behind."""

    columns: tuple[str, ...]
    score: FloatArray
    onset: FloatArray
    evidence: dict[str, list[EdgeEvidence]] = field(default_factory=dict)
    # (caller, callee) → whether the callee spent more time on that edge (server side departed)
    # or its end of the edge is blamed for the caller's wait.
    callee_slow: dict[tuple[str, str], bool] = field(default_factory=dict)


def score_edges(
    edges: Sequence[EdgeSeries],
    anomaly_time: float,
    *,
    window_s: float,
    level_s: float,
    onset_z: float,
    lookback_s: float | None = None,
    config: EdgeConfig | None = None,
    suspects: Collection[str] | None = None,
) -> EdgeScores:
    """Blame per service from the edges' departures after `anomaly_time` (see the module doc).
    `suspects`: the services that may take blame (None: every end); the load generator, an
    ingress or a service of another namespace is an end that cannot be acted on here."""
    cfg = config or EdgeConfig()
    scored = measure_edges(
        edges,
        anomaly_time,
        window_s=window_s,
        level_s=level_s,
        onset_z=onset_z,
        lookback_s=lookback_s,
        config=cfg,
    )
    # A caller that waits less than its callee spends does not wait for it (a queue, a
    # fire-and-forget call): that callee's slowness never explains the caller's.
    queued = {(e.client, e.server): False for e in edges if one_way(e, anomaly_time)}
    if not scored:
        return EdgeScores(columns=(), score=np.empty(0), onset=np.empty(0), callee_slow=queued)
    gap = _blame(scored, lambda e: max(e.z, 0.0) * e.network_share, onset_z, cfg, suspects)
    err = _blame(scored, lambda e: e.errors_z, onset_z, cfg, suspects)
    served = _served(scored)
    ends = {s for e in scored for s in (e.edge.client, e.edge.server)}
    services = sorted(ends & set(suspects) if suspects is not None else ends)
    columns: list[str] = []
    score: list[float] = []
    onset: list[float] = []
    evidence: dict[str, list[EdgeEvidence]] = {}
    kinds: tuple[tuple[Literal["gap", "errors", "server"], str, _Blame], ...] = (
        ("gap", GAP, gap),
        ("errors", ERRORS, err),
        ("server", SERVER, served),
    )
    for kind, metric, blame in kinds:
        for svc in services:
            parts = blame.get(svc, [])
            departed = [(e, share) for e, share, strength in parts if strength >= onset_z]
            columns.append(f"{svc}_{metric}")
            score.append(sum(share * strength for _, share, strength in parts))
            onset.append(min((first_departure(e, onset_z) for e, _ in departed), default=math.nan))
            evidence.setdefault(svc, []).extend(
                _evidence(e, kind, sh, onset_z) for e, sh in departed
            )
    # The callee explains its caller's trouble on this edge when it spent more time itself,
    # returned more failures itself, or its end of the edge is blamed for the caller's wait or
    # failures.
    blamed_callee = {
        id(e)
        for kind in (gap, err)
        for service, parts in kind.items()
        for e, share, strength in parts
        if service == e.edge.server and share >= 0.5 and strength >= onset_z
    }
    slow_callee = {
        (e.edge.client, e.edge.server): e.server_z >= onset_z
        or e.served_errors_rise >= cfg.min_error_rise
        or id(e) in blamed_callee
        for e in scored
    }
    return EdgeScores(
        columns=tuple(columns),
        score=np.asarray(score, dtype=np.float64),
        onset=np.asarray(onset, dtype=np.float64),
        evidence={
            k: sorted(v, key=lambda ev: -ev.score * ev.share) for k, v in evidence.items() if v
        },
        callee_slow={**slow_callee, **queued},
    )


_Blame = dict[str, list[tuple[EdgeMeasure, float, float]]]


def _blame(
    edges: Sequence[EdgeMeasure],
    strength: Callable[[EdgeMeasure], float],
    onset_z: float,
    cfg: EdgeConfig,
    suspects: Collection[str] | None,
) -> _Blame:
    """service → (edge, its share of the edge, the edge's strength) for every edge touching it.
    An end that is no suspect (outside the services ranked) keeps no share: the other takes it."""
    strong = [strength(e) for e in edges]
    outbound: dict[str, list[bool]] = {}
    inbound: dict[str, list[bool]] = {}
    for e, s in zip(edges, strong, strict=True):
        outbound.setdefault(e.edge.client, []).append(s >= onset_z)
        inbound.setdefault(e.edge.server, []).append(s >= onset_z)
    shows = math.log(cfg.side_shows / cfg.chance)
    quiet = math.log((1 - cfg.side_shows) / (1 - cfg.chance))

    def odds(side: list[bool]) -> float:
        k = sum(side)
        return k * shows + (len(side) - k) * quiet

    out: _Blame = {}
    for e, s in zip(edges, strong, strict=True):
        if s <= 0:
            continue
        lean = odds(outbound[e.edge.client]) - odds(inbound[e.edge.server])
        to_server = 1.0 / (1.0 + math.exp(min(max(lean, -50.0), 50.0)))
        if suspects is not None:
            client_ok, server_ok = e.edge.client in suspects, e.edge.server in suspects
            if not (client_ok or server_ok):
                continue
            to_server = to_server if client_ok and server_ok else float(server_ok)
        # The edge goes to the end the odds favour (to both, by halves, on a tie): a small
        # share of a large departure is no departure of the other end.
        for end, share in ((e.edge.server, to_server), (e.edge.client, 1.0 - to_server)):
            if share >= 0.5:
                out.setdefault(end, []).append((e, share, s))
    return out


def _served(edges: Sequence[EdgeMeasure]) -> _Blame:
    """callee → its inbound edges, each weighing its server-side rise by the callee's number of
    inbound edges: the callee's own time, which every caller sees, averaged over them."""
    inbound: dict[str, list[EdgeMeasure]] = {}
    for e in edges:
        inbound.setdefault(e.edge.server, []).append(e)
    return {
        svc: [(e, 1.0 / len(es), max(e.server_z, 0.0)) for e in es] for svc, es in inbound.items()
    }


def _evidence(
    e: EdgeMeasure, kind: Literal["gap", "errors", "server"], share: float, onset_z: float
) -> EdgeEvidence:
    return EdgeEvidence(
        client=e.edge.client,
        server=e.edge.server,
        statistic=e.edge.statistic,
        kind=kind,
        score=round({"gap": e.z, "errors": e.errors_z, "server": e.server_z}[kind], 3),
        network_share=round(e.network_share, 3),
        share=round(share, 3),
        client_before=math.exp(e.client.before),
        client_after=math.exp(e.client.after),
        server_before=math.exp(e.server.before) if e.server else 0.0,
        server_after=math.exp(e.server.after) if e.server else 0.0,
        client_errors_after=e.errors[0],
        server_errors_after=e.errors[1],
        onset=first_departure(e, 0.0 if kind == "errors" else onset_z) if e.after.size else None,
    )
