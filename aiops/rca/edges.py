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

`measure_edges` gives each edge's departure; `edge_health` says per edge what changed (for a
person reading the graph); blame.py turns departures into blame per service for the ranking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from aiops.rca.models import RcaInputError

FloatArray = npt.NDArray[np.float64]

#: The smallest latency change that is a change at all, in log space (1 %): latencies read off
#: histogram buckets or divided timers are no finer, and a graph whose every edge is steadier
#: than that (a synthetic or idle one) would otherwise call a 0.01 % wobble "slower".
RESOLUTION = math.log(1.01)


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
    latencies in seconds (one statistic of the bin's calls, named by `statistic`: "mean",
    "p50", ...); NaN where a bin has no calls. Error arrays are the share of the bin's calls
    that failed as each side saw them."""

    client: str
    server: str
    times: FloatArray
    calls: FloatArray
    client_latency: FloatArray
    server_latency: FloatArray
    client_errors: FloatArray | None = None
    server_errors: FloatArray | None = None
    statistic: str = "p50"

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
class Level:
    """One latency side of an edge around the anomaly, in log space."""

    before: float  # median log latency of the freshest bins before
    after: float  # median log latency of the bins after
    noise: float  # the edge's own bin-to-bin spread before (0 when too few bins)

    @property
    def rise(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class EdgeMeasure:
    """One edge around the anomaly: both sides' levels, the share of the caller's rise that
    happened outside the callee, failures, and the departures as robust z."""

    edge: EdgeSeries
    client: Level
    server: Level | None
    network_share: float  # share of the client's rise outside the callee's own time
    errors_rise: float  # failures seen by the caller only, share of calls
    served_errors_rise: float  # failures the callee itself returned, share of calls
    errors: tuple[float | None, float | None]  # after: (client side, server side)
    after: FloatArray  # times of the bins after, and their log client latency
    after_logs: FloatArray
    z: float = 0.0
    server_z: float = 0.0
    errors_z: float = 0.0


def measure_edges(
    edges: Sequence[EdgeSeries],
    anomaly_time: float,
    *,
    window_s: float,
    level_s: float,
    onset_z: float,
    lookback_s: float | None = None,
    config: EdgeConfig | None = None,
) -> list[EdgeMeasure]:
    """Every edge with bins on both sides of `anomaly_time`, with its departures.

    `level_s`: the level to depart from is the median of the bins within this many seconds of the
    last bin before the anomaly (the freshest normal; older bins may hold earlier incidents).
    """
    cfg = config or EdgeConfig()
    measured = [
        m
        for m in (_measure(e, anomaly_time, window_s, level_s, lookback_s) for e in edges)
        if m is not None
    ]
    # An edge's own spread from a handful of bins is unreliable: no edge is believed to be
    # quieter than the typical edge of the same graph, nor than latency can be read at all.
    client_floor = max(_typical([m.client.noise for m in measured]), RESOLUTION)
    server_floor = max(
        _typical([m.server.noise for m in measured if m.server is not None]), RESOLUTION
    )
    return [
        replace(
            m,
            z=m.client.rise / max(m.client.noise, client_floor),
            server_z=m.server.rise / max(m.server.noise, server_floor) if m.server else 0.0,
            errors_z=m.errors_rise * onset_z / cfg.min_error_rise,
        )
        for m in measured
    ]


def one_way(e: EdgeSeries, at: float) -> bool:
    """The caller waits less than the callee spends (a queue, a fire-and-forget call): it does
    not wait for the callee."""
    before = (e.times < at) & (np.nan_to_num(e.calls) > 0)
    return bool(_median(e.client_latency[before]) < _median(e.server_latency[before]))


def first_departure(e: EdgeMeasure, onset_z: float) -> float:
    """The first bin after the anomaly whose client latency stood `onset_z` noise units up."""
    scale = e.client.rise / e.z if e.z > 0 else math.inf
    above = e.after[(e.after_logs - e.client.before) >= onset_z * scale]
    return float(above[0]) if above.size else float(e.after[0]) if e.after.size else math.nan


class EdgeHealth(BaseModel):
    """What changed on one edge since the level before `at`, as a person reads it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: str
    server: str
    statistic: str = Field(description="the latency statistic: mean, p50, ...")
    verdict: Literal["ok", "slower", "slow network", "failing", "calls lost"] = Field(
        description="slower: the callee spends more; slow network: the caller waits, the callee "
        "does not spend it; failing: the callee returns failures; calls lost: only the caller "
        "sees them fail"
    )
    calls_per_s: float | None
    client_before: float = Field(description="seconds the caller waited, before")
    client_now: float
    server_before: float | None
    server_now: float | None
    client_errors_now: float | None
    server_errors_now: float | None
    score: float = Field(description="robust z of the client latency's rise")
    network_share: float


def edge_health(
    edges: Sequence[EdgeSeries],
    at: float,
    *,
    window_s: float,
    level_s: float,
    onset_z: float = 3.0,
    config: EdgeConfig | None = None,
) -> list[EdgeHealth]:
    """Per edge with data on both sides of `at`: its levels before and after and a verdict."""
    cfg = config or EdgeConfig()
    out = []
    for m in measure_edges(
        edges, at, window_s=window_s, level_s=level_s, onset_z=onset_z, config=cfg
    ):
        if m.errors_z >= onset_z:
            verdict: Literal["ok", "slower", "slow network", "failing", "calls lost"] = "calls lost"
        elif m.served_errors_rise >= cfg.min_error_rise:
            verdict = "failing"
        elif m.z >= onset_z:
            verdict = "slow network" if m.network_share >= 0.5 else "slower"
        else:
            verdict = "ok"
        after = (m.edge.times >= at) & (m.edge.times < at + window_s)
        out.append(
            EdgeHealth(
                client=m.edge.client,
                server=m.edge.server,
                statistic=m.edge.statistic,
                verdict=verdict,
                calls_per_s=_none(_median(m.edge.calls[after])),
                client_before=math.exp(m.client.before),
                client_now=math.exp(m.client.after),
                server_before=math.exp(m.server.before) if m.server else None,
                server_now=math.exp(m.server.after) if m.server else None,
                client_errors_now=m.errors[0],
                server_errors_now=m.errors[1],
                score=round(m.z, 3),
                network_share=round(m.network_share, 3),
            )
        )
    return out


def _none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _measure(
    e: EdgeSeries, at: float, window_s: float, level_s: float, lookback_s: float | None
) -> EdgeMeasure | None:
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
    return EdgeMeasure(
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
) -> Level | None:
    usable = np.isfinite(values) & (values > 0)
    before, after = before & usable, after & usable
    if not before.any() or not after.any():
        return None
    with np.errstate(divide="ignore"):
        logs = np.log(np.where(usable, values, 1.0))
    diffs = np.abs(np.diff(logs[before]))
    return Level(
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


def _median(a: FloatArray) -> float:
    """np.median of the finite values; a sort is several times faster on the few bins here."""
    ordered = np.sort(a[np.isfinite(a)])
    n = ordered.size
    if not n:
        return math.nan
    return float(ordered[n // 2]) if n % 2 else float(ordered[n // 2 - 1] + ordered[n // 2]) / 2


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0
