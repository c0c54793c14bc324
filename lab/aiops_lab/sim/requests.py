"""The shop's requests, counted once and flavour-neutrally, for every metrics flavour to render.

A request is counted under `(side, caller, callee, code)`:

* `side="server"`: the callee handled it (its response code, its latency), whoever called;
* `side="client"`: the caller made it, as the caller saw it: the callee's answer after the
  wire's delay, or a failure the callee never saw (a reset on the wire, a connection no ready
  upstream accepted). The same call is counted on both sides when it reached the callee.

Latency is a cumulative histogram over the flavour's `grid_ms` (the union of the boundaries its
exporters use), so each exporter's own buckets are exact subsets of it. The bucket draws use a
generator of their own: the shop's flows (request counts, codes) are the same in every flavour for
a seed, only the latency draws differ.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

LATENCY_SIGMA = 0.45  # lognormal spread of one pod's latency around its median

RequestKey = tuple[str, str, str, str]  # side, caller, callee, code


@dataclass
class Histogram:
    cumulative: np.ndarray  # requests at or below each grid boundary
    total: float = 0.0  # requests, all latencies
    sum_ms: float = 0.0

    def copy(self) -> Histogram:
        return Histogram(self.cumulative.copy(), self.total, self.sum_ms)

    def add(self, other: Histogram) -> None:
        self.cumulative = self.cumulative + other.cumulative
        self.total += other.total
        self.sum_ms += other.sum_ms


class RequestLedger:
    """Cumulative request counters by (side, caller, callee, code), monotonic per key."""

    def __init__(self, grid_ms: tuple[float, ...], seed: int) -> None:
        if list(grid_ms) != sorted(set(grid_ms)):
            raise ValueError(f"latency grid {grid_ms} must be strictly increasing")
        self.grid_ms = grid_ms
        self._ln = np.log(np.maximum(np.array(grid_ms), 1e-9))
        # Refused connections fail fast: under a millisecond, above any zero boundary.
        self._fast_fail = (np.array(grid_ms) >= 1.0).astype(float)
        self.rng = np.random.default_rng([seed, 1])
        self.counts: dict[RequestKey, Histogram] = {}
        self._indices: dict[tuple[float, ...], list[int]] = {}

    def empty(self) -> Histogram:
        return Histogram(np.zeros(len(self.grid_ms)))

    def continue_from(self, other: RequestLedger) -> None:
        """Carry another ledger's counters over (history → live: counters stay monotonic)."""
        if other.grid_ms != self.grid_ms:
            raise ValueError("ledgers of different flavours cannot continue each other")
        self.counts = {k: h.copy() for k, h in other.counts.items()}

    def bucket_probs(self, medians: list[float]) -> tuple[np.ndarray, float]:
        """Per-bucket probabilities (last: above the largest boundary) and the mean of a mixture
        of the serving pods' lognormal latencies."""
        ln_m = np.log(np.maximum(np.array(medians), 1e-3))[:, None]
        z = (self._ln[None, :] - ln_m) / (LATENCY_SIGMA * math.sqrt(2.0))
        cdf = (0.5 * (1.0 + _erf(z))).mean(axis=0)
        probs = np.clip(np.diff(np.concatenate(([0.0], cdf, [1.0]))), 0.0, None)
        mean = sum(medians) / len(medians) * math.exp(LATENCY_SIGMA**2 / 2)
        return probs / probs.sum(), mean

    def observe(
        self,
        side: str,
        src: str,
        dst: str,
        code: str,
        n: int,
        probs: np.ndarray | None,
        mean_ms: float,
    ) -> None:
        """Count `n` requests; `probs=None`: refused connections (fail fast)."""
        key = (side, src, dst, code)
        h = self.counts.get(key)
        if h is None:
            h = self.counts[key] = self.empty()
        if n <= 0:
            return
        h.total += n
        h.sum_ms += n * mean_ms
        if probs is None:
            h.cumulative += n * self._fast_fail
            return
        draws = self.rng.multinomial(n, probs)
        h.cumulative += np.cumsum(draws[:-1])

    def items(self, side: str | None = None) -> Iterator[tuple[RequestKey, Histogram]]:
        for key, h in sorted(self.counts.items()):
            if side is None or key[0] == side:
                yield key, h

    def server_view(self) -> dict[tuple[str, str, str], Histogram]:
        """(caller, callee, code) -> what the callee counted."""
        return {(src, dst, code): h for (_, src, dst, code), h in self.items("server")}

    def caller_view(self) -> dict[tuple[str, str, str], Histogram]:
        """(caller, callee, code) -> what the caller saw of every call it made."""
        return {(src, dst, code): h for (_, src, dst, code), h in self.items("client")}

    def at(self, h: Histogram, boundaries_ms: tuple[float, ...]) -> list[float]:
        """Cumulative counts at `boundaries_ms` (each must be on the grid), then +Inf."""
        idx = self._indices.get(boundaries_ms)
        if idx is None:
            idx = self._indices[boundaries_ms] = [self.grid_ms.index(b) for b in boundaries_ms]
        return [*(float(h.cumulative[i]) for i in idx), h.total]


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz-Stegun 7.1.26 (error < 1.5e-7), vectorised: math.erf per bucket is slow."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    result: np.ndarray = sign * (1.0 - poly * np.exp(-a * a))
    return result
