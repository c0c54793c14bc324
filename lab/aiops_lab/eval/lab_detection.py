"""Scoring the live detection pass against the lab's fault scenarios (issue 4's lab targets).

Pure helpers for bench/bench_lab_detection.py: which anomalies count as detecting a scenario's
fault, the customary Prometheus alerting rules the detector is compared with (the same catalog
signals with static thresholds and `for: 1m`), shortening a scenario, and the per-scenario
figures and table. No network I/O here; the bench drives the lab.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from aiops.detect.catalog import Signal
from aiops_lab.scenario import Scenario

#: Signals on which a fault of each kind is expected to show (the "signal family"): an anomaly
#: on one of them during the fault counts as detection even on another entity (the symptom
#: surfaces downstream, e.g. packet loss at currencyservice as errors at the frontend).
FAMILIES: dict[str, frozenset[str]] = {
    "memory_leak": frozenset(
        {"memory_vs_limit", "restarts", "pods_not_ready", "replicas_available_ratio"}
    ),
    "bad_rollout": frozenset({"error_ratio"}),
    "cpu_hog": frozenset({"cpu_usage", "cpu_vs_limit", "latency_p99"}),
    "crashloop": frozenset({"restarts", "pods_not_ready", "replicas_available_ratio"}),
    "latency": frozenset({"latency_p99"}),
    "packet_loss": frozenset({"error_ratio"}),
    "traffic_surge": frozenset({"request_rate", "cpu_usage", "cpu_vs_limit", "latency_p99"}),
    "node_pressure": frozenset({"node_cpu_busy", "node_memory_available_ratio"}),
    "dependency_down": frozenset({"error_ratio", "pods_not_ready", "replicas_available_ratio"}),
}

#: Customary static alerting thresholds per catalog signal (kube-prometheus / RED-method style),
#: as `(comparison, threshold)`. Signals without a customary static threshold (request rate,
#: p99 latency, raw CPU cores) are compared with their own last hour instead: `> 2x` the hourly
#: mean ending 5 minutes ago. None of these were tuned on the scenarios.
STATIC_RULES: dict[str, tuple[str, float]] = {
    "error_ratio": (">", 0.05),
    "cpu_vs_limit": (">", 0.9),
    "memory_vs_limit": (">", 0.9),
    "restarts": (">", 0.0),
    "pods_not_ready": (">", 0.0),
    "replicas_available_ratio": ("<", 1.0),
    "node_cpu_busy": (">", 0.9),
    "node_memory_available_ratio": ("<", 0.1),
}
RELATIVE_RULES: dict[str, float] = {"request_rate": 2.0, "latency_p99": 2.0, "cpu_usage": 2.0}


def alert_rules(
    signals: Sequence[Signal], *, window: str = "1m", for_: str = "1m"
) -> dict[str, Any]:
    """A Prometheus rule file (as a mapping) with one alert per catalog signal."""
    rules: list[dict[str, Any]] = []
    for s in signals:
        q = s.render(window=window)
        if s.name in STATIC_RULES:
            op, thr = STATIC_RULES[s.name]
            expr = f"({q}) {op} {thr:g}"
        elif s.name in RELATIVE_RULES:
            k = RELATIVE_RULES[s.name]
            expr = f"({q}) > {k:g} * avg_over_time(({q})[1h:1m] offset 5m)"
        else:
            continue
        rules.append(
            {"alert": f"Aiops_{s.name}", "expr": expr, "for": for_, "labels": {"signal": s.name}}
        )
    return {"groups": [{"name": "aiops-bench-customary", "rules": rules}]}


def shorten(
    scenario: Scenario, *, warmup: float | None = None, hold: float | None = None
) -> Scenario:
    """The scenario with another warmup and/or `hold` seconds after the first fault (the
    duration becomes warmup + hold). Faults with a fixed duration keep it."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    w = scenario.warmup if warmup is None else warmup
    data["warmup"] = w
    if hold is not None:
        last = max([f.at for f in scenario.faults] + [n.at for n in scenario.noise], default=0.0)
        data["duration"] = w + max(hold, last + 1.0)
    return Scenario.model_validate(data)


def lengthen_control(scenario: Scenario, seconds: float) -> Scenario:
    """A no-fault control run for `seconds` in all (never shortened); noise that lasted until
    the shipped end (a seasonal swing) lasts until the new end."""
    if seconds <= scenario.duration:
        return scenario
    data = scenario.model_dump(mode="json", exclude_none=True)
    shipped_end = scenario.duration - scenario.warmup
    for n in data.get("noise", []):
        if n.get("duration") is not None and n["at"] + n["duration"] >= shipped_end - 60.0:
            n["duration"] = seconds - scenario.warmup - n["at"]
    data["duration"] = seconds
    return Scenario.model_validate(data)


def to_yaml(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False)


def entity_matches(labels: Mapping[str, str], root_cause: str) -> bool:
    """Whether a series (or alert) names the root cause: the workload, a pod of its
    deployment (`<deployment>-<hash>-<id>`), the deployment, or the node (`node-a:9100`)."""
    if root_cause == "none":
        return False
    for key in ("workload", "destination_workload", "deployment", "pod", "instance", "node"):
        v = labels.get(key)
        if v is None:
            continue
        if v == root_cause or v.split(":")[0] == root_cause:
            return True
        if (
            key == "pod"
            and v.startswith(root_cause + "-")
            and v.count("-") - root_cause.count("-") == 2
        ):
            return True
    return False


@dataclass(frozen=True)
class Observation:
    """An anomaly or a firing alert, as the bench saw it."""

    signal: str
    labels: Mapping[str, str]
    at: float  # unix time the bench saw it (a pass returned it / the alert API said firing)
    onset: float  # the anomaly's start grid time / the alert's activeAt
    value: float | None = None
    baseline: float | None = None


@dataclass
class ScenarioResult:
    name: str
    root_cause: str
    fault: str
    played_at: float
    fault_at: float | None
    ends_at: float
    anomalies: list[Observation] = field(default_factory=list)
    alerts: list[Observation] = field(default_factory=list)
    step: float = 1.0

    # --- which observations count ---------------------------------------------------------

    def _matching(self, obs: Observation) -> bool:
        fam = FAMILIES.get(self.fault, frozenset())
        return entity_matches(obs.labels, self.root_cause) or obs.signal in fam

    def _in_fault(self, obs: Observation) -> bool:
        return self.fault_at is not None and obs.onset >= self.fault_at - self.step

    @property
    def hits(self) -> list[Observation]:
        return sorted(
            (a for a in self.anomalies if self._in_fault(a) and self._matching(a)),
            key=lambda a: a.at,
        )

    @property
    def false_anomalies(self) -> list[Observation]:
        """Anomalies before the fault (in the warmup), or all of them in a no-fault control."""
        return [a for a in self.anomalies if not self._in_fault(a)]

    @property
    def unmatched_in_fault(self) -> list[Observation]:
        """During the fault, neither on the root cause nor on its signal family."""
        return [a for a in self.anomalies if self._in_fault(a) and not self._matching(a)]

    @property
    def detected(self) -> bool:
        return bool(self.hits)

    @property
    def root_cause_hit(self) -> bool:
        return any(entity_matches(a.labels, self.root_cause) for a in self.hits)

    @property
    def ttd(self) -> float | None:
        if not self.hits or self.fault_at is None:
            return None
        return self.hits[0].at - self.fault_at

    # --- the alerting rule, same signal -----------------------------------------------------

    def alert_hits(self, signal: str | None = None) -> list[Observation]:
        return sorted(
            (
                a
                for a in self.alerts
                if a.onset >= self.played_at
                and self._in_fault(a)
                and self._matching(a)
                and (signal is None or a.signal == signal)
            ),
            key=lambda a: a.at,
        )

    @property
    def alert_signal(self) -> str | None:
        """The signal compared: the detector's first hit's, else the first alert's."""
        if self.hits:
            return self.hits[0].signal
        hits = self.alert_hits()
        return hits[0].signal if hits else None

    @property
    def alert_ttd(self) -> float | None:
        sig = self.alert_signal
        if sig is None or self.fault_at is None:
            return None
        hits = self.alert_hits(sig)
        return hits[0].at - self.fault_at if hits else None

    @property
    def any_alert_ttd(self) -> float | None:
        hits = self.alert_hits()
        if not hits or self.fault_at is None:
            return None
        return hits[0].at - self.fault_at

    @property
    def false_alerts(self) -> list[Observation]:
        return [a for a in self.alerts if a.onset >= self.played_at and not self._in_fault(a)]

    def as_dict(self) -> dict[str, Any]:
        watched = self.ends_at - (self.fault_at if self.fault_at is not None else self.played_at)
        return {
            "scenario": self.name,
            "root_cause": self.root_cause,
            "fault": self.fault,
            "detected": self.detected if self.fault != "none" else None,
            "root_cause_hit": self.root_cause_hit if self.fault != "none" else None,
            "first_signal": self.hits[0].signal if self.hits else None,
            "first_series": dict(self.hits[0].labels) if self.hits else None,
            "ttd_s": _r(self.ttd),
            "ttd_scrapes": _r(None if self.ttd is None else self.ttd / self.step),
            "alert_signal": self.alert_signal,
            "alert_ttd_s": _r(self.alert_ttd),
            "any_alert_ttd_s": _r(self.any_alert_ttd),
            "false_anomalies": len(self.false_anomalies),
            "unmatched_in_fault": len(self.unmatched_in_fault),
            "false_alerts": len(self.false_alerts),
            "watched_s": round(self.ends_at - self.played_at),
            "fault_watched_s": round(watched),
            "anomalies": [
                {
                    "signal": a.signal,
                    "series": dict(a.labels),
                    "t_s": round(a.at - (self.fault_at or self.played_at), 1),
                    "value": a.value,
                    "baseline": a.baseline,
                }
                for a in sorted(self.anomalies, key=lambda a: a.at)
            ],
        }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def summary(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    faults = [r for r in results if r.fault != "none"]
    controls = [r for r in results if r.fault == "none"]
    ttds = [r.ttd for r in faults if r.ttd is not None]
    ratios = [
        r.alert_ttd / r.ttd
        for r in faults
        if r.ttd is not None and r.alert_ttd is not None and r.ttd > 0
    ]
    # An alert that had not fired when the scenario ended took at least that long: counting it
    # at that lower bound keeps the median conservative (it can only understate the ratio).
    bounded = [
        (r.alert_ttd if r.alert_ttd is not None else r.ends_at - (r.fault_at or 0.0)) / r.ttd
        for r in faults
        if r.ttd is not None and r.ttd > 0
    ]
    alert_ttds = [r.alert_ttd for r in faults if r.alert_ttd is not None]
    step = faults[0].step if faults else 1.0
    return {
        "fault_scenarios": len(faults),
        "detected": sum(r.detected for r in faults),
        "root_cause_hit": sum(r.root_cause_hit for r in faults),
        "median_ttd_s": _r(statistics.median(ttds)) if ttds else None,
        "median_ttd_scrapes": _r(statistics.median(ttds) / step) if ttds else None,
        "median_alert_ttd_s": _r(statistics.median(alert_ttds)) if alert_ttds else None,
        "alerts_fired": len(alert_ttds),
        "median_ttd_ratio_alert_over_detector": (
            round(statistics.median(ratios), 1) if ratios else None
        ),
        "pairs_in_ratio": len(ratios),
        "median_ttd_ratio_unfired_alerts_at_lower_bound": (
            round(statistics.median(bounded), 1) if bounded else None
        ),
        "pairs_with_lower_bounds": len(bounded),
        "false_anomalies_in_warmups": sum(len(r.false_anomalies) for r in faults),
        "control_anomalies": {r.name: len(r.anomalies) for r in controls},
        "control_seconds": {r.name: round(r.ends_at - r.played_at) for r in controls},
        "control_alerts": {r.name: len(r.false_alerts) for r in controls},
    }


def table(results: Sequence[ScenarioResult]) -> str:
    head = (
        f"{'scenario':26} {'detected':8} {'rc':3} {'TTD s':>6} {'scrapes':>7} "
        f"{'signal':24} {'alert s':>7} {'any alert':>9} {'false':>5} {'other':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        d = r.as_dict()

        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}"

        det = "control" if r.fault == "none" else ("yes" if r.detected else "NO")
        rc = "" if r.fault == "none" else ("yes" if r.root_cause_hit else "no")
        lines.append(
            f"{r.name:26} {det:8} {rc:3} {f(d['ttd_s']):>6} {f(d['ttd_scrapes']):>7} "
            f"{(d['first_signal'] or '-'):24} {f(d['alert_ttd_s']):>7} "
            f"{f(d['any_alert_ttd_s']):>9} {len(r.false_anomalies):>5} "
            f"{len(r.unmatched_in_fault):>5}"
        )
    return "\n".join(lines)
