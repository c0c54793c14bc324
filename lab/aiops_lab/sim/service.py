"""The shop as the lab runs it: simulation ticking in real time, /metrics for Prometheus, and a
small control API on the same loopback port so that `aiops lab inject` / `status` (separate
processes) can reach the running lab:

    GET  /lab/status      JSON: services, active faults, the scenario in play
    POST /lab/scenario    body: scenario YAML; 200 JSON summary, 400 with the validation message
    POST /lab/clear       end every fault that has no remedy in the cluster (latency, ...)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from typing import Any

import structlog

from aiops_lab.ports import ClusterPort
from aiops_lab.scenario import Scenario, ScenarioError, parse_scenario
from aiops_lab.sim.exporter import MetricsServer, ShopRunner, serve_metrics
from aiops_lab.sim.faults import ActiveFault, Fault
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.timeline import ScenarioTimeline
from aiops_lab.sim.traffic import Pattern, Traffic

JSON = "application/json"
log = structlog.get_logger("aiops_lab.shop")


class ShopService:
    def __init__(
        self,
        cluster: ClusterPort,
        *,
        seed: int = 0,
        rps: float = 50.0,
        pattern: Pattern = Pattern.DIURNAL,
        anchor: float | None = None,
        port: int = 0,
        tick: float = 1.0,
        history: Shop | None = None,
        metrics: str = "istio",
    ) -> None:
        """`anchor`: where the diurnal curve passes through `rps` (pass the backfill's end);
        `history`: the backfill's shop, whose counters the live ones continue; `metrics`: the
        request-metrics flavour (istio, otel, linkerd; the history's)."""
        self.cluster = cluster
        self.shop = Shop(
            cluster,
            seed=seed,
            traffic=Traffic(
                rps, pattern, seed=seed, anchor=anchor if anchor is not None else time.time()
            ),
            metrics=metrics,
        )
        if history is not None:
            self.shop.continue_from(history)
        self.port = port
        self.tick = tick
        self.timeline: ScenarioTimeline | None = None
        self._lock = threading.Lock()
        self.runner: ShopRunner | None = None
        self.server: MetricsServer | None = None

    def start(self) -> ShopService:
        self.runner = ShopRunner(self.shop, self.tick, before_tick=self._before_tick).start()
        self.server = serve_metrics(self.shop, self.port, control=self._control)
        self.port = self.server.port
        return self

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.runner is not None:
            self.runner.stop()

    def _before_tick(self, now: float) -> None:
        with self._lock:
            timeline = self.timeline
        if timeline is not None:
            timeline.step(now)

    # --- what the CLI does ----------------------------------------------------------------

    def play(self, scenario: Scenario, now: float | None = None) -> ScenarioTimeline:
        """Start a scenario: its traffic now, its faults after its warmup."""
        timeline = ScenarioTimeline(
            self.shop, scenario, started_at=now if now is not None else time.time()
        )
        with self._lock:
            previous, self.timeline = self.timeline, timeline
        if previous is not None and not previous.finished:
            previous.finish()
        log.info(
            "scenario started",
            scenario=scenario.name,
            faults_at=timeline.fault_start,
            ends_at=timeline.ends_at,
            faults=[f.kind.value for f in scenario.faults],
        )
        return timeline

    def inject(self, fault: Fault) -> ActiveFault:
        active = self.shop.inject(fault, time.time())
        log.info(
            "fault injected",
            fault=active.id,
            kind=fault.kind.value,
            target=fault.target,
            severity=fault.severity.value,
        )
        return active

    def status(self) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            tl = self.timeline
        return {
            "metrics_url": self.metrics_url,
            "services": [asdict(s) for s in self.shop.status()],
            "faults": [
                {
                    "id": f.id,
                    "kind": f.fault.kind.value,
                    "target": f.fault.target,
                    "severity": f.fault.severity.value,
                    "since": f.started,
                    "until": f.until,
                }
                for f in self.shop.faults
            ],
            "scenario": None
            if tl is None
            else {
                "name": tl.scenario.name,
                "started_at": tl.started_at,
                "faults_at": tl.fault_start,
                "ends_at": tl.ends_at,
                "done": tl.done(now),
                "operated": sorted(tl.operated),
                "expect": tl.scenario.expect.model_dump(mode="json"),
            },
            "errors": list(self.runner.errors) if self.runner else [],
        }

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes] | None:
        if method == "GET" and path == "/lab/status":
            return 200, JSON, json.dumps(self.status()).encode()
        if method == "POST" and path == "/lab/scenario":
            try:
                scenario = parse_scenario(body.decode("utf-8", "replace"), "<posted scenario>")
            except ScenarioError as e:
                return 400, JSON, json.dumps({"error": str(e)}).encode()
            tl = self.play(scenario)
            return (
                200,
                JSON,
                json.dumps(
                    {"name": scenario.name, "faults_at": tl.fault_start, "ends_at": tl.ends_at}
                ).encode(),
            )
        if method == "POST" and path == "/lab/clear":
            self.shop.clear_faults()
            return 200, JSON, b'{"cleared": true}'
        return None
