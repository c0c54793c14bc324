"""Root-cause analysis in the live lab: every fault scenario played, the incident opened the way
the detection loop opens it, then the shipped deterministic investigation (the investigate
activity's code path: the LangGraph agent over the lab's Prometheus and Kubernetes API, no LLM)
and the planner's playbook for its report.

Usage:
    python3 -m uv run python bench/bench_lab_rca.py [--labs 2] [--at detection|delay] \
        [--delay 25] [--warmup 45] [--cooldown 45] [--settle 240] [--json out.json]

Each of `--labs` worker processes runs its own lab (simulated cluster + real Prometheus scraping
every second, two days of backfilled history) and plays its share of the scenarios one after
another. The detection pass (aiops/detect, 1 s step) runs against that Prometheus the whole time;
it needs `--settle` seconds of live samples before its first alarm (per-pod series are new).

Per scenario: play it with its warmup shortened to `--warmup`; the incident is the first pass
after the fault's start that raised anomalies that started at or after it, grouped by namespace
as `open_incidents` does (the namespace group of the shop when there is one, else the
cluster-scope group); `--at detection` investigates at once (as the IncidentWorkflow does),
`--at delay` waits until `--delay` seconds after the fault first. A fault the detector has not
flagged within `--max-wait` seconds is still investigated, from an incident opened at the fault's
start with no anomalies (as an Alertmanager alert without labels would), and marked `fallback`.
Latency: the investigate activity from call to return. Between scenarios: POST /lab/clear, roll
back revision faults through the Kubernetes API, wait `--cooldown`.

Scored: rank of expect.root_cause among the hypotheses, the top hypothesis' fault type against
the lab fault kind's RCA fault type (lab/aiops_lab/eval/lab_rca.py), and the playbook the
planner picks (after observing the target as the observe activity does) against expect.playbook.

Figures of 2026-12-07 (defaults: 2 labs, staggered by 45 s, `--at both`; load average 8-10 on
the 2 cores from other runs): at +25 s 11 of 11 ranked first, 11 of 11 with the right fault
type, 11 of 11 playbooks as expected; at detection (+3-9 s) 10 / 7 / 7 of 11; the detector
flagged 10 of 11 (catalog-crashloop fell back at +60 s); investigation p50 0.69 s, p95 2.2 s
(+25 s) and 0.71 s / 2.6 s (at detection).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiops_lab.eval.lab_detection import shorten, to_yaml  # noqa: E402
from aiops_lab.eval.lab_rca import RcaResult, expected_fault, rank_of, summary, table  # noqa: E402
from aiops_lab.scenario import SCENARIO_DIR, Scenario, load_all  # noqa: E402

from aiops.activities.contracts import InvestigateInput, ObserveInput  # noqa: E402
from aiops.activities.incident import AgentInvestigator, IncidentActivities  # noqa: E402
from aiops.activities.intake import incident_of  # noqa: E402
from aiops.agent.graph import AgentDeps  # noqa: E402
from aiops.config import PrometheusSettings  # noqa: E402
from aiops.detect.catalog import BUILTIN_SIGNALS  # noqa: E402
from aiops.detect.detection_pass import DetectionState, PassConfig  # noqa: E402
from aiops.detect.grouping import group_anomalies  # noqa: E402
from aiops.domain import Anomaly, Incident, RcaReport  # noqa: E402
from aiops.integrations.kubernetes import KubernetesExecutor  # noqa: E402
from aiops.integrations.kubernetes.readers import KubernetesReader  # noqa: E402
from aiops.integrations.prometheus import Prometheus, RangeQuery  # noqa: E402
from aiops.playbooks.loader import load_playbooks  # noqa: E402
from aiops.playbooks.planner import plan_remediation  # noqa: E402

STEP = 1.0
NAMESPACE = "boutique"
REVISION_FAULTS = {"bad_rollout", "crashloop"}
MOMENTS = {"detection": ("detection",), "delay": ("delay",), "both": ("detection", "delay")}

# Balanced by running time. Revision faults go last in each lab: their rollbacks are rollouts
# that stay in the cluster's recent history (as they would in a real one).
LABS: dict[int, list[list[str]]] = {
    1: [
        [
            "ad-memory-leak-fast",
            "catalog-cpu-hog",
            "node-a-pressure",
            "catalog-latency",
            "currency-packet-loss",
            "frontend-traffic-surge",
            "cart-memory-leak",
            "redis-down",
            "cart-bad-rollout",
            "checkout-bad-rollout",
            "catalog-crashloop",
        ]
    ],
    2: [
        [
            "ad-memory-leak-fast",
            "catalog-cpu-hog",
            "catalog-latency",
            "frontend-traffic-surge",
            "cart-bad-rollout",
            "catalog-crashloop",
        ],
        [
            "node-a-pressure",
            "currency-packet-loss",
            "cart-memory-leak",
            "redis-down",
            "checkout-bad-rollout",
        ],
    ],
    3: [
        ["ad-memory-leak-fast", "catalog-cpu-hog", "catalog-latency", "catalog-crashloop"],
        ["node-a-pressure", "currency-packet-loss", "frontend-traffic-surge", "cart-bad-rollout"],
        ["cart-memory-leak", "redis-down", "checkout-bad-rollout"],
    ],
}


def _lab(state_dir: str) -> None:
    from aiops_lab.runner import run_lab

    run_lab(Path(state_dir), rps=50.0, scrape_interval="1s")


@dataclass
class Passes:
    """Every detection pass: when its answer was in, and the anomalies it raised."""

    seen: list[tuple[float, list[Anomaly]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first_after(self, fault_at: float) -> tuple[float, list[Anomaly]] | None:
        """The first pass after the fault with anomalies that started at or after it."""
        with self.lock:
            for seen, found in self.seen:
                if seen < fault_at:
                    continue
                fresh = [a for a in found if a.start.timestamp() >= fault_at - STEP]
                if fresh:
                    return seen, fresh
        return None


def detection_loop(prom_url: str, passes: Passes, stop: threading.Event) -> None:
    config = PassConfig(step_seconds=STEP, prime_seconds=3600.0, rate_window="1m")
    state = DetectionState(list(BUILTIN_SIGNALS), config)
    prom = Prometheus(PrometheusSettings(url=prom_url, timeout_s=10.0))
    try:
        while not stop.is_set():
            plans = state.plan(datetime.now(UTC))
            answers = prom.fetch_many(
                [RangeQuery(p.promql, p.start, p.end, p.step_seconds) for p in plans], parallel=4
            )
            result = state.apply(plans, {p.signal: a for p, a in zip(plans, answers, strict=True)})
            with passes.lock:
                passes.seen.append((time.time(), list(result.anomalies)))
            time.sleep(max(0.05, STEP - (time.time() % STEP) + 0.1))
    finally:
        prom.close()


def choose_incident(anomalies: list[Anomaly]) -> Incident:
    """The incident `open_incidents` opens for the shop's namespace (else the cluster scope)."""
    groups = group_anomalies(anomalies)
    group = next((g for g in groups if g.namespace == NAMESPACE), groups[0])
    return incident_of(group)


def fallback_incident(name: str, fault_at: float) -> Incident:
    return Incident(
        id=f"incident-bench-{name}",
        fingerprint=f"bench-{name}",
        namespace=NAMESPACE,
        opened_at=datetime.fromtimestamp(fault_at, tz=UTC),
    )


class Investigation:
    """The investigate activity and the planner, wired as the worker wires them."""

    def __init__(self, prom_url: str, kubeconfig: str) -> None:
        self.prometheus = Prometheus(PrometheusSettings(url=prom_url, timeout_s=10.0))
        self.executor = KubernetesExecutor.from_kubeconfig(kubeconfig)
        deps = AgentDeps(
            metrics=self.prometheus, cluster=KubernetesReader(self.executor.api_client)
        )
        self.activities = IncidentActivities(
            investigator=AgentInvestigator(deps), executor=self.executor, prometheus=self.prometheus
        )
        self.playbooks = load_playbooks(REPO / "playbooks")

    def investigate(self, incident: Incident) -> tuple[RcaReport, float]:
        t0 = time.perf_counter()
        report = asyncio.run(
            self.activities.investigate_incident(InvestigateInput(incident=incident))
        )
        return report, time.perf_counter() - t0

    def playbook(self, report: RcaReport, namespace: str | None) -> tuple[str, list[str]]:
        """The playbook the planner picks, and why it passed over the others."""
        observed = asyncio.run(
            self.activities.observe_target(
                ObserveInput(incident_id=report.incident_id, report=report, namespace=namespace)
            )
        )
        planned = plan_remediation(report, self.playbooks, observed.observed)
        return planned.plan.playbook_id, list(planned.skipped)

    def close(self) -> None:
        self.prometheus.close()


def _cleanup(scenario: Scenario, shop_url: str, kube: KubernetesExecutor) -> list[str]:
    httpx.post(f"{shop_url}/lab/clear", timeout=10.0).raise_for_status()
    notes = []
    for f in scenario.faults:
        if f.kind.value in REVISION_FAULTS and f.target is not None:
            r = kube.rollout_undo(NAMESPACE, f.target, incident_id=f"bench-rca-{scenario.name}")
            notes.append(f"rolled back {f.target}: {r.ok}")
    return notes


def _hypotheses(report: RcaReport) -> list[dict[str, Any]]:
    return [
        {
            "target": h.target,
            "kind": h.target_kind,
            "fault": h.fault.value,
            "confidence": h.confidence,
            "evidence": [f"[{e.kind}] {e.summary}" for e in h.evidence[:8]],
        }
        for h in report.hypotheses[:5]
    ]


def play_one(
    s: Scenario, info: dict[str, Any], passes: Passes, inv: Investigation, args: argparse.Namespace
) -> list[RcaResult]:
    """Play one scenario; one result per investigation moment in `args.at`."""
    fault = s.faults[0]
    r = httpx.post(f"{info['shop_url']}/lab/scenario", content=to_yaml(s), timeout=10.0)
    r.raise_for_status()
    fault_at = float(r.json()["faults_at"])
    print(
        f"[{datetime.now(UTC):%H:%M:%S}] {s.name}: playing, fault in "
        f"{fault_at - time.time():.0f} s",
        flush=True,
    )
    deadline = fault_at + args.max_wait
    found = None
    while time.time() < deadline:
        found = passes.first_after(fault_at)
        if found is not None:
            break
        time.sleep(0.2)
    if found is not None:
        incident = choose_incident(found[1])
        trigger, opened = "detection", found[0] - fault_at
    else:
        incident = fallback_incident(s.name, fault_at)
        trigger, opened = "fallback", time.time() - fault_at
    scope = f"incident scope {incident.namespace or 'cluster'}: " + ", ".join(
        sorted({f"{a.signal}/{a.entity}" for a in incident.anomalies})
    )
    results = []
    for moment in MOMENTS[args.at]:
        if moment == "delay":
            time.sleep(max(0.0, fault_at + args.delay - time.time()))
        res = RcaResult(
            name=s.name,
            root_cause=s.expect.root_cause,
            fault=expected_fault(fault.kind.value).value,
            playbook=s.expect.playbook,
            moment=moment,
            trigger=trigger,
            anomalies=len(incident.anomalies),
            incident_after_fault_s=round(opened, 1),
            investigated_after_fault_s=round(time.time() - fault_at, 1),
            notes=[scope[:300]],
        )
        investigate_into(res, incident, s, inv)
        results.append(res)
    return results


def investigate_into(res: RcaResult, incident: Incident, s: Scenario, inv: Investigation) -> None:
    try:
        report, took = inv.investigate(incident)
    except Exception as exc:  # a failed investigation is a result, not the end of the bench
        res.error = f"{type(exc).__name__}: {exc}"[:300]
        return
    res.latency_s = round(took, 3)
    res.rank = rank_of(report, s.expect.root_cause)
    top = report.top
    res.top = top.target if top else None
    res.top_fault = top.fault.value if top else None
    res.top_confidence = round(top.confidence, 3) if top else None
    res.hypotheses = _hypotheses(report)
    res.notes += list(report.notes)
    try:
        res.chosen_playbook, skipped = inv.playbook(report, incident.namespace)
        if res.chosen_playbook != s.expect.playbook:
            res.notes += [f"planner skipped {why}" for why in skipped]
    except Exception as exc:
        res.notes.append(f"planning failed: {type(exc).__name__}: {exc}"[:300])
    print(
        f"    {s.name} at {res.moment}: rank {res.rank}, top {res.top} ({res.top_fault}, "
        f"{res.top_confidence}), playbook {res.chosen_playbook}, {took:.2f} s, "
        f"{res.trigger} +{res.incident_after_fault_s}s",
        flush=True,
    )


def run_lab_worker(names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    scenarios = load_all(SCENARIO_DIR)
    results: list[RcaResult] = []
    notes: list[str] = []
    passes = Passes()
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="aiops-labrca-") as tmp:
        lab = None
        if args.lab_state is not None:  # a lab already running (`aiops lab up`)
            info_file = args.lab_state / "lab" / "lab.json"
        else:
            lab = mp.get_context("spawn").Process(target=_lab, args=(tmp,), daemon=True)
            lab.start()
            info_file = Path(tmp) / "lab" / "lab.json"
        deadline = time.time() + 180
        while not info_file.exists():
            if time.time() > deadline or (lab is not None and not lab.is_alive()):
                raise RuntimeError(f"the lab did not come up ({info_file} is missing)")
            time.sleep(0.5)
        info = json.loads(info_file.read_text())
        loop = threading.Thread(
            target=detection_loop, args=(info["prometheus_url"], passes, stop), daemon=True
        )
        loop.start()
        inv = Investigation(info["prometheus_url"], info["kubeconfig"])
        try:
            time.sleep(args.settle)
            for name in names:
                s = shorten(scenarios[name], warmup=args.warmup, hold=args.hold)
                results += play_one(s, info, passes, inv, args)
                notes += [f"{name}: {n}" for n in _cleanup(s, info["shop_url"], inv.executor)]
                time.sleep(args.cooldown)
        finally:
            stop.set()
            loop.join(timeout=15)
            inv.close()
            if lab is not None:
                lab.terminate()
                lab.join(timeout=30)
    return {"results": [r.as_dict() for r in results], "notes": notes}


def _from_dict(d: dict[str, Any]) -> RcaResult:
    keep = {k: v for k, v in d.items() if k not in ("rank1", "rank1_fault", "playbook_ok")}
    return RcaResult(**keep)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--labs", type=int, default=2, choices=sorted(LABS))
    p.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated names, run as one lab; ';' separates labs run in "
        "parallel (default: every fault scenario, in --labs labs)",
    )
    p.add_argument(
        "--at",
        choices=sorted(MOMENTS),
        default="both",
        help="investigate when the detector flags the fault, --delay s after the "
        "fault, or both (the same incident twice)",
    )
    p.add_argument("--delay", type=float, default=25.0)
    p.add_argument(
        "--max-wait",
        type=float,
        default=60.0,
        help="seconds after the fault to wait for the detector before the fallback",
    )
    p.add_argument("--warmup", type=float, default=90.0, help="fault scenarios' warmup (s)")
    p.add_argument("--hold", type=float, default=150.0, help="scenario length after the fault")
    p.add_argument(
        "--cooldown",
        type=float,
        default=90.0,
        help="after clearing; with the warmup it must outlast the ranking's 120 s "
        "baseline level plus the 60 s rate window, or the last fault leaks in",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=240.0,
        help="live seconds before the first scenario (detector warm-up)",
    )
    p.add_argument(
        "--stagger",
        type=float,
        default=45.0,
        help="each further lab starts its first scenario this much later",
    )
    p.add_argument("--json", type=Path, default=None, help="write every result here")
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="print the tables of an earlier --json file instead of running",
    )
    p.add_argument(
        "--lab-state",
        type=Path,
        default=None,
        help="use the lab already running under this AIOPS_STATE_DIR (one lab)",
    )
    p.add_argument("--verbose", action="store_true", help="print the top hypotheses' evidence")
    p.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker is not None:
        args.worker.write_text(json.dumps(run_lab_worker(args.scenarios.split(","), args)))
        return 0

    if args.from_json is not None:
        labs_out = json.loads(args.from_json.read_text())["labs"]
    else:
        plan = (
            [g.split(",") for g in args.scenarios.split(";")] if args.scenarios else LABS[args.labs]
        )
        started = time.time()
        passthrough = [
            "--at",
            args.at,
            "--delay",
            str(args.delay),
            "--max-wait",
            str(args.max_wait),
            "--warmup",
            str(args.warmup),
            "--hold",
            str(args.hold),
            "--cooldown",
            str(args.cooldown),
            *(["--lab-state", str(args.lab_state)] if args.lab_state else []),
        ]
        with tempfile.TemporaryDirectory(prefix="aiops-labrca-bench-") as tmp:
            procs = []
            for i, names in enumerate(plan):
                out = Path(tmp) / f"lab{i}.json"
                # Staggered, so that two labs' investigations do not run at the same moment.
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    str(out),
                    "--scenarios",
                    ",".join(names),
                    *passthrough,
                    "--settle",
                    str(args.settle + i * args.stagger),
                ]
                procs.append((subprocess.Popen(cmd, cwd=REPO), out))
            labs_out = []
            for proc, out in procs:
                if proc.wait() != 0 or not out.exists():
                    print(f"a lab worker failed (exit {proc.returncode})", file=sys.stderr)
                    return 1
                labs_out.append(json.loads(out.read_text()))
        print(
            f"wall time {time.time() - started:.0f} s, {len(plan)} lab(s) in parallel, "
            f"investigated at {args.at}"
        )

    results = [_from_dict(d) for lab in labs_out for d in lab["results"]]
    results.sort(key=lambda r: (r.moment, r.name))
    summaries = {}
    for moment in sorted({r.moment for r in results}):
        mine = [r for r in results if r.moment == moment]
        print(f"\ninvestigated at {moment}:")
        print(table(mine))
        for r in mine:
            if args.verbose or not (r.rank1_fault and r.playbook_ok):
                print(
                    f"\n{r.name} at {moment} (want {r.root_cause}, {r.fault}, {r.playbook}; "
                    f"{r.anomalies} anomalies, {r.trigger}):"
                )
                for h in r.hypotheses[:3]:
                    print(f"  {h['target']} {h['fault']} {h['confidence']:.2f}")
                    for e in h["evidence"][:6]:
                        print(f"      {e[:150]}")
                for n in r.notes[:8]:
                    print(f"  note: {n[:200]}")
        summaries[moment] = summary(mine)
    for lab in labs_out:
        if lab["notes"]:
            print("; ".join(lab["notes"]))
    s = summaries
    print(json.dumps(s, indent=2))
    if args.json is not None and args.from_json is None:
        args.json.write_text(
            json.dumps(
                {
                    "summary": s,
                    "labs": labs_out,
                    "args": {k: str(v) for k, v in vars(args).items()},
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
