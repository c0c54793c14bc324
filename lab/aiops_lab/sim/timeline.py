"""Play a scenario on a running shop: switch to its traffic, then inject its faults and noise at
their times (counted from the end of the warmup); everyday operations (a drain, an autoscaler, a
CronJob) run from their time until they are done or the scenario ends."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiops_lab.scenario import Scenario
from aiops_lab.sim import operators
from aiops_lab.sim.faults import ActiveFault
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.traffic import Traffic


@dataclass
class ScenarioTimeline:
    shop: Shop
    scenario: Scenario
    started_at: float
    injected: list[ActiveFault] = field(default_factory=list)
    running: list[operators.Operator] = field(default_factory=list)
    finished: bool = False
    _next_fault: int = 0
    _next_noise: int = 0

    def __post_init__(self) -> None:
        s = self.scenario
        old = self.shop.traffic
        with self.shop.lock:
            self.shop.traffic = Traffic(
                rps=s.traffic.rps,
                pattern=s.traffic.pattern,
                seed=s.seed,
                anchor=old.anchor,
                period=old.period,
                amplitude=old.amplitude,
                bursts=None if s.traffic.bursts is None else s.traffic.bursts.to_bursts(),
                bursts_from=self.started_at + (s.traffic.bursts.after if s.traffic.bursts else 0),
            )
        self._faults = sorted(s.faults, key=lambda f: f.at)
        self._noise = sorted(s.noise, key=lambda n: n.at)

    @property
    def fault_start(self) -> float:
        return self.started_at + self.scenario.warmup

    @property
    def ends_at(self) -> float:
        return self.started_at + self.scenario.duration

    @property
    def operated(self) -> set[str]:
        """The objects the scenario's everyday operations changed (a drain's restarts, an
        autoscaler's or a person's scaling)."""
        return set().union(*(op.changed for op in self.running))

    def done(self, now: float) -> bool:
        return now >= self.ends_at

    def step(self, now: float) -> None:
        """Inject whatever is due by `now`, end the scenario's faults once it is over; call
        before `shop.step(now)`."""
        if self.finished:
            return
        if self.done(now):
            self.finish()
            return
        while (
            self._next_fault < len(self._faults)
            and self.fault_start + self._faults[self._next_fault].at <= now
        ):
            spec = self._faults[self._next_fault]
            self._next_fault += 1
            self.injected.append(self.shop.inject(spec.to_fault(), now))
        while (
            self._next_noise < len(self._noise)
            and self.fault_start + self._noise[self._next_noise].at <= now
        ):
            n = self._noise[self._next_noise]
            self._next_noise += 1
            if n.kind in operators.OPERATIONS:
                self.running.append(
                    operators.start(
                        self.shop, n.kind, n.target, now, n.duration, n.magnitude, n.every
                    )
                )
            else:
                self.shop.noise(n.kind, n.target, now, n.duration, n.magnitude)
        for op in self.running:
            op.step(now)

    def finish(self) -> None:
        """The scenario is over: its faults end (revision faults stay in the cluster until
        rolled back), its traffic seasonality and spikes stop."""
        self.finished = True
        for op in self.running:
            op.stop(self.shop.now or 0.0)
        self.shop.end_faults({f.id for f in self.injected})
        with self.shop.lock:
            self.shop.traffic.extra_seasonality = 0.0
            self.shop.traffic.spikes.clear()
