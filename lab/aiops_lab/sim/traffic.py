"""The load generator: requests per second arriving at the frontend as a function of time.

Every pattern is a pure function of (seed, time) — not of how often it is sampled — so a run is
reproducible whatever the tick length, and backfilled history and the live run agree at the seam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

DAY = 86400.0


class Pattern(StrEnum):
    STEADY = "steady"
    DIURNAL = "diurnal"
    SPIKY = "spiky"


@dataclass(frozen=True)
class Spike:
    """A short burst of extra traffic (noise, not a fault)."""

    start: float
    duration: float
    multiplier: float


@dataclass(frozen=True)
class Bursts:
    """Random bursts of extra traffic: in each window of `every` seconds, with probability
    `chance`, one burst of `seconds` (drawn from the range) at `multiplier` x the rate (drawn
    from the range), placed wholly inside the window."""

    multiplier: tuple[float, float] = (1.3, 1.6)
    seconds: tuple[float, float] = (10.0, 30.0)
    every: float = 120.0
    chance: float = 0.5

    def __post_init__(self) -> None:
        if self.seconds[1] > self.every:
            raise ValueError(
                f"bursts of up to {self.seconds[1]:g} s do not fit in windows of {self.every:g} s"
            )


#: The spiky pattern's own bursts: enough to show on every graph, not enough to overload a
#: healthy shop (the frontend peaks near 80 %).
SPIKY_BURSTS = Bursts()


@dataclass
class Traffic:
    rps: float
    pattern: Pattern = Pattern.STEADY
    seed: int = 0
    # Diurnal curves pass through `rps` at `anchor` (rising), so history backfilled up to the lab
    # start joins the live traffic without a step. Peak-to-mean amplitude is `amplitude`.
    anchor: float = 0.0
    period: float = DAY
    amplitude: float = 0.3
    # A faster seasonal swing a scenario may add as noise (amplitude, start, period).
    extra_seasonality: float = 0.0
    seasonality_start: float = 0.0
    seasonality_period: float = 600.0
    spikes: list[Spike] = field(default_factory=list)
    # Random bursts on top of the pattern (the spiky pattern has SPIKY_BURSTS when None),
    # from `bursts_from` (unix seconds) on.
    bursts: Bursts | None = None
    bursts_from: float = 0.0
    # Multiplicative jitter, deterministic per second of time.
    jitter: float = 0.03

    def rate(self, t: float) -> float:
        r = self.rps
        if self.pattern is Pattern.DIURNAL:
            r *= 1.0 + self.amplitude * math.sin(2 * math.pi * (t - self.anchor) / self.period)
        if self.extra_seasonality:
            r *= 1.0 + self.extra_seasonality * math.sin(
                2 * math.pi * (t - self.seasonality_start) / self.seasonality_period
            )
        bursts = self.bursts or (SPIKY_BURSTS if self.pattern is Pattern.SPIKY else None)
        if bursts is not None and t >= self.bursts_from:
            r *= self._burst(t, bursts)
        for s in self.spikes:
            if s.start <= t < s.start + s.duration:
                r *= s.multiplier
        if self.jitter:
            r *= 1.0 + self.jitter * self._noise(int(t))
        return max(r, 0.0)

    def _noise(self, second: int) -> float:
        return float(np.random.default_rng([self.seed, 7, second & 0xFFFFFFFF]).standard_normal())

    def _burst(self, t: float, b: Bursts) -> float:
        window = int(t // b.every)
        rng = np.random.default_rng([self.seed, 11, window & 0xFFFFFFFF])
        if rng.random() > b.chance:
            return 1.0
        start = window * b.every + rng.uniform(0, b.every - b.seconds[1])
        length = rng.uniform(*b.seconds)
        return float(rng.uniform(*b.multiplier)) if start <= t < start + length else 1.0
