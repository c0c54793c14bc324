"""Root-cause evidence from the service graph: what callers waited beside what callees spent.

Per caller → callee edge a mesh or tracing pipeline reports the client-side latency (what the
caller waited, network included), the server-side latency (what the callee's proxy or server span
measured) and the calls that failed on either side. A network fault (delay, loss) barely moves the
faulty service's own metrics, but it opens a gap between the two sides of the edges that touch it:
the caller waits longer while the callee spends no more time. So, per edge:

* the client latency's departure from its level just before the anomaly, as a robust z in log
  space (latencies are multiplicative; the noise is the edge's own bin-to-bin spread, floored by
  the spread typical of the case's edges, so an edge with two bins of history is not believed
  more than the rest);
* the share of that rise that happened outside the callee (client rise minus server rise, over the
  client rise): the network and queues of its ends;
* the rise in failures the caller saw and the callee did not (503s, resets, `response_flags`).

A departed edge points at one of its two ends. Which one is read from the rest of the graph, as
the single fault that best explains every departure: a network fault or a starved process shows on
most edges of its side of a service (the callee's inbound edges, or the caller's outbound ones),
and an edge departs by chance only rarely. Each side's log-likelihood ratio against "no fault"
counts its departed edges for it and its quiet ones against it, and an edge's two ends share its
departure by those odds: a hub with one slow callee among seven is not the cause, a service whose
every inbound edge slowed is, and a caller whose every outbound edge slowed is the common cause
of them all. The result is one pseudo-column per service and kind (`<service>_edge_gap`,
`<service>_edge_errors`), scored like a metric, so the ranking weighs them against the service's
own metrics with the same peer standing (see rank.py).

Where an edge shows that its callee spent no more time (server side flat), the callee does not
explain its caller's slowness, whatever its other metrics did: `EdgeScores.callee_slow` tells the
ranking so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from aiops.rca.models import EdgeEvidence, RcaInputError

FloatArray = npt.NDArray[np.float64]

# The pseudo-metrics an edge analysis adds per service (the family of `edge_*` is NETWORK).
GAP = "edge_gap"
ERRORS = "edge_errors"
SERVER = "edge_server_latency"  # family LATENCY: the callee's own time, a symptom that propagates


def is_edge_metric(metric: str) -> bool:
    """Whether a metric name is one of the service graph's pseudo-metrics."""
    return metric.startswith("edge_")


@dataclass(frozen=True)
class EdgeConfig:
    # The single-fault model that splits an edge's departure between its ends: a faulty side of
    # a service shows on most of its edges (not all: an edge carrying few calls, or calls the
    # fault spares, may stay within noise), while an edge departs by chance about once in twenty.
    side_shows: float = 0.8
    chance: float = 0.05
    # Caller-only failures rising by this share of calls are a departure (z = onset_z): the
    # floor the detector puts on an error ratio.
    min_error_rise: float = 0.01


@dataclass(frozen=True)
class EdgeSeries:
    """One caller → callee edge over time. `times` are unix seconds of each bin's end, ascending;
    latencies in seconds (one quantile of the bin, named by `quantile`); NaN where a bin has no
    calls. Error arrays are the share of the bin's calls that failed as each side saw them."""

    client: str
    server: str
    times: FloatArray
    calls: FloatArray
    client_latency: FloatArray
    server_latency: FloatArray
    client_errors: FloatArray | None = None
    server_errors: FloatArray | None = None
    quantile: str = "p50"

    def __post_init__(self) -> None:
        if not self.client or not self.server:
            raise RcaInputError("an edge needs both a client and a server service name")
        times = np.asarray(self.times, dtype=np.float64)
        if times.ndim != 1:
            raise RcaInputError(f"edge {self.name}: times must be one-dimensional")
        if times.size > 1 and not np.all(np.diff(times) > 0):
            raise RcaInputError(
                f"edge {self.name}: times must be strictly increasing; sort the bins and merge "
                "duplicates"
            )
        object.__setattr__(self, "times", times)
        for name in ("calls", "client_latency", "server_latency", "client_errors", "server_errors"):
            raw = getattr(self, name)
            if raw is None:
                continue
            arr = np.asarray(raw, dtype=np.float64)
            if arr.shape != times.shape:
                raise RcaInputError(
                    f"edge {self.name}: {name} has {arr.size} values for {times.size} times"
                )
            object.__setattr__(self, name, np.where(np.isinf(arr), np.nan, arr))

    @property
    def name(self) -> str:
        return f"{self.client} → {self.server}"


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


@dataclass(frozen=True)
class _Level:
    """One latency side of an edge around the anomaly, in log space."""

    before: float  # median log latency of the freshest bins before
    after: float  # median log latency of the bins after
    noise: float  # the edge's own bin-to-bin spread before (0 when too few bins)

    @property
    def rise(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class _Edge:
    edge: EdgeSeries
    client: _Level
    server: _Level | None
    network_share: float  # share of the client's rise outside the callee's own time
    errors_rise: float  # failures seen by the caller only, share of calls
    served_errors_rise: float  # failures the callee itself returned, share of calls
    errors: tuple[float | None, float | None]  # after: (client side, server side)
    after: FloatArray  # times of the bins after, and their log client latency
    after_logs: FloatArray
    z: float = 0.0
    server_z: float = 0.0
    errors_z: float = 0.0


def score_edges(
    edges: Sequence[EdgeSeries],
    anomaly_time: float,
    *,
    window_s: float,
    level_s: float,
    onset_z: float,
    lookback_s: float | None = None,
    config: EdgeConfig | None = None,
) -> EdgeScores:
    """Blame per service from the edges' departures after `anomaly_time` (see the module doc).

    `level_s`: the level to depart from is the median of the bins within this many seconds of the
    last bin before the anomaly (the freshest normal; older bins may hold earlier incidents).
    """
    cfg = config or EdgeConfig()
    measured = [
        m
        for m in (_measure(e, anomaly_time, window_s, level_s, lookback_s) for e in edges)
        if m is not None
    ]
    # A caller that waits less than its callee spends does not wait for it (a queue, a
    # fire-and-forget call): that callee's slowness never explains the caller's.
    one_way = {(e.client, e.server): False for e in edges if _one_way(e, anomaly_time)}
    if not measured:
        return EdgeScores(columns=(), score=np.empty(0), onset=np.empty(0), callee_slow=one_way)
    # An edge's own spread from a handful of bins is unreliable: no edge is believed to be
    # quieter than the typical edge of the same graph.
    client_floor = _typical([m.client.noise for m in measured])
    server_floor = _typical([m.server.noise for m in measured if m.server is not None])
    scored = [
        replace(
            m,
            z=m.client.rise / max(m.client.noise, client_floor),
            server_z=m.server.rise / max(m.server.noise, server_floor) if m.server else 0.0,
            errors_z=m.errors_rise * onset_z / cfg.min_error_rise,
        )
        for m in measured
    ]
    gap = _blame(scored, lambda e: max(e.z, 0.0) * e.network_share, onset_z, cfg)
    err = _blame(scored, lambda e: e.errors_z, onset_z, cfg)
    served = _served(scored)
    services = sorted({s for e in scored for s in (e.edge.client, e.edge.server)})
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
            onset.append(min((_onset(e, onset_z) for e, _ in departed), default=math.nan))
            evidence.setdefault(svc, []).extend(_evidence(e, kind, sh) for e, sh in departed)
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
        callee_slow={**slow_callee, **one_way},
    )


def _one_way(e: EdgeSeries, at: float) -> bool:
    before = (e.times < at) & (np.nan_to_num(e.calls) > 0)
    return bool(_median(e.client_latency[before]) < _median(e.server_latency[before]))


def _measure(
    e: EdgeSeries, at: float, window_s: float, level_s: float, lookback_s: float | None
) -> _Edge | None:
    has_calls = np.nan_to_num(e.calls) > 0
    start = -math.inf if lookback_s is None else at - lookback_s
    before = has_calls & (e.times < at) & (e.times >= start)
    after = has_calls & (e.times >= at) & (e.times < at + window_s)
    client = _level(e.client_latency, e.times, before, after, level_s)
    if client is None:
        return None
    server = _level(e.server_latency, e.times, before, after, level_s)
    rise = math.exp(client.after) - math.exp(client.before)
    served = math.exp(server.after) - math.exp(server.before) if server is not None else 0.0
    share = min(max((rise - served) / rise, 0.0), 1.0) if rise > 0 else 0.0
    errors_rise = served_err = 0.0
    errors: tuple[float | None, float | None] = (None, None)
    if e.client_errors is not None:
        recent = _recent(e.times, before & np.isfinite(e.client_errors), level_s)
        seen = _median(e.client_errors[after]) - _median(e.client_errors[recent])
        if e.server_errors is not None:
            served_err = _finite(_median(e.server_errors[after]) - _median(e.server_errors[recent]))
        errors_rise = max(_finite(seen) - max(served_err, 0.0), 0.0)
        errors = (
            _median(e.client_errors[after]),
            _median(e.server_errors[after]) if e.server_errors is not None else None,
        )
    usable = after & (e.client_latency > 0)
    return _Edge(
        edge=e,
        client=client,
        server=server,
        network_share=share,
        errors_rise=errors_rise,
        served_errors_rise=served_err,
        errors=errors,
        after=e.times[usable],
        after_logs=np.log(e.client_latency[usable]),
    )


def _level(
    values: FloatArray,
    times: FloatArray,
    before: npt.NDArray[np.bool_],
    after: npt.NDArray[np.bool_],
    level_s: float,
) -> _Level | None:
    usable = np.isfinite(values) & (values > 0)
    before, after = before & usable, after & usable
    if not before.any() or not after.any():
        return None
    with np.errstate(divide="ignore"):
        logs = np.log(np.where(usable, values, 1.0))
    diffs = np.abs(np.diff(logs[before]))
    return _Level(
        before=_median(logs[_recent(times, before, level_s)]),
        after=_median(logs[after]),
        noise=_median(diffs) / 0.954 if diffs.size else 0.0,
    )


def _recent(
    times: FloatArray, before: npt.NDArray[np.bool_], level_s: float
) -> npt.NDArray[np.bool_]:
    """The bins before within `level_s` of the last one: the freshest normal period."""
    if not before.any():
        return before
    last = float(times[before][-1])
    return before & (times >= last - level_s)


def _typical(noises: list[float]) -> float:
    positive = [n for n in noises if n > 0]
    return float(np.median(positive)) if positive else math.log(1.1)


_Blame = dict[str, list[tuple[_Edge, float, float]]]


def _blame(
    edges: Sequence[_Edge], strength: Callable[[_Edge], float], onset_z: float, cfg: EdgeConfig
) -> _Blame:
    """service → (edge, its share of the edge, the edge's strength) for every edge touching it."""
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
        # The edge goes to the end the odds favour (to both, by halves, on a tie): a small
        # share of a large departure is no departure of the other end.
        for end, share in ((e.edge.server, to_server), (e.edge.client, 1.0 - to_server)):
            if share >= 0.5:
                out.setdefault(end, []).append((e, share, s))
    return out


def _served(edges: Sequence[_Edge]) -> _Blame:
    """callee → its inbound edges, each weighing its server-side rise by the callee's number of
    inbound edges: the callee's own time, which every caller sees, averaged over them."""
    inbound: dict[str, list[_Edge]] = {}
    for e in edges:
        inbound.setdefault(e.edge.server, []).append(e)
    return {
        svc: [(e, 1.0 / len(es), max(e.server_z, 0.0)) for e in es] for svc, es in inbound.items()
    }


def _onset(e: _Edge, onset_z: float) -> float:
    """The first bin after the anomaly whose client latency stood `onset_z` noise units up."""
    scale = e.client.rise / e.z if e.z > 0 else math.inf
    above = e.after[(e.after_logs - e.client.before) >= onset_z * scale]
    return float(above[0]) if above.size else float(e.after[0]) if e.after.size else math.nan


def _evidence(e: _Edge, kind: Literal["gap", "errors", "server"], share: float) -> EdgeEvidence:
    return EdgeEvidence(
        client=e.edge.client,
        server=e.edge.server,
        quantile=e.edge.quantile,
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
        onset=_onset(e, 0.0 if kind == "errors" else 3.0) if e.after.size else None,
    )


def _median(a: FloatArray) -> float:
    """np.median of the finite values; a sort is several times faster on the few bins here."""
    ordered = np.sort(a[np.isfinite(a)])
    n = ordered.size
    if not n:
        return math.nan
    return float(ordered[n // 2]) if n % 2 else float(ordered[n // 2 - 1] + ordered[n // 2]) / 2


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0
