"""Live detection in the lab: every fault scenario and the no-fault controls, the detection pass
every scrape interval (1 s) against the lab's Prometheus, side by side with the same catalog
signals as customary Prometheus alerting rules (`for: 1m`) evaluated by that same Prometheus.

Usage:
    python3 -m uv run python bench/bench_lab_detection.py [--groups 3] [--warmup 30] \
        [--hold 150] [--cooldown 40] [--settle 240] [--control-minutes 10] \
        [--rate-window 15s] [--settle-seconds 0] [--keep DIR] [--json out.json]

The scenarios are split into `--groups` groups; each group runs in its own worker process with its
own lab (simulated cluster + real Prometheus with 2 days of backfilled history and the alerting
rules), one scenario after another: the detector warms up on live data for `--settle` seconds first
(per-pod series are new at lab start: they start from their workload's warm pods' range, and the
settle keeps start-up noise out of the figures), then each scenario is played with its warmup
shortened to `--warmup` and observed `--hold` seconds from the fault on; the no-fault controls run
`--control-minutes` (their seasonal swing stretched to the end). Between scenarios the bench ends
the faults (POST /lab/clear), rolls back revision faults through the lab's Kubernetes API, and waits
`--cooldown` seconds. The detector and the alert rules use the same queries, with the same
`--rate-window` (15 s: 15 samples at the 1 s scrape). `--keep DIR` keeps each lab's Prometheus data;
bench/replay_lab_detection.py then scores any detector setting on that recording offline.

TTD: from the fault's injection (the simulation acts on its next tick, up to 1 s after the
scheduled time; /lab/status tells when) to the moment the bench saw the anomaly (a pass
returned it; passes run 0.1 s past each whole second and score that second) or the alert
(GET /api/v1/alerts said firing, polled every second).

Figures of 2026-12-07 (defaults, 3 labs in parallel on a shared 2-core machine at load 5-11;
pass p50 0.11 s, p99 0.37-0.42 s): 11 of 11 faults detected, all on the root cause; the two
controls raised 0 anomalies in 10 minutes each (and the for: 1m rules 0 alerts). Median TTD
2.6 s = 2.6 scrapes against 62.4 s for the for: 1m rules on the same signal (7 pairs; median
ratio 25.9x). Per scenario, TTD s detector / same-signal rule: node-a-pressure 0.8/-,
catalog-cpu-hog 1.4/62.4, catalog-latency 1.4/61.5, frontend-traffic-surge 1.5/61.6,
redis-down 2.4/62.4, currency-packet-loss 2.6/66.6, catalog-crashloop 4.8/- (restarts),
cart-bad-rollout 5.1/67.2, ad-memory-leak-fast 9.6/-, checkout-bad-rollout 16.7/78.6,
cart-memory-leak 20.6/- ("-": that rule had not fired when the scenario ended). Why the slow
ones are slow: a rollout's errors start only once its new pods serve (cart: new pod at +2 s,
ready at +6 s, first 500 at +7 s; checkout: new pods at +13 s, first 500 at +17 s, read from
the kept Prometheus data), and a leak must grow 8 pp of the limit (memory_vs_limit's minimum
change: traffic spikes in the controls move memory up to 6.2 pp), i.e. ~20 s at cartservice's
0.4 pp/s. An earlier run of the same code without latency_p99's 100-request minimum had 1
control anomaly (paymentservice p99 of ~30 requests in a 15 s window). Before this change
(2026-11-24 code, 1m window, 10-minute controls): 9 of 11 detected (catalog-crashloop and
checkout-bad-rollout missed), median 4.3 s, controls 64 and 41 anomalies.

Again at commit 487d36b (the daemon's signals only, seeded new pods, load rules; beside a CI
run): 11 of 11 detected, median TTD 1.9 s against 61.9 s (ratio 36.1x); the first anomaly of
catalog-latency is its caller's latency (the fault acts on the callers' side), so 10 of 11 on
the root cause; control-benign-rollout 0 anomalies, control-seasonal-traffic 1 (frontend p99
3.6x its normal at the top of the stretched swing). TTD per scenario: node-a-pressure,
catalog-cpu-hog, catalog-latency, frontend-traffic-surge 1; currency-packet-loss, redis-down 2;
cart-bad-rollout, catalog-crashloop, checkout-bad-rollout 5; ad-memory-leak-fast 10;
cart-memory-leak 19.
"""

from __future__ import annotations

import argparse
import contextlib
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
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiops_lab.eval.lab_detection import (  # noqa: E402
    Observation,
    ScenarioResult,
    alert_rules,
    lengthen_control,
    shorten,
    summary,
    table,
    to_yaml,
)
from aiops_lab.scenario import EVERYDAY_DIR, SCENARIO_DIR, Scenario, load_all  # noqa: E402

from aiops.activities.detection import build_signals  # noqa: E402
from aiops.config import PrometheusSettings  # noqa: E402
from aiops.detect.detection_pass import DetectionState, PassConfig  # noqa: E402
from aiops.integrations.prometheus import Prometheus, RangeQuery  # noqa: E402

STEP = 1.0
RATE_WINDOW = "15s"  # 15 samples at the 1 s scrape: a fault shows within a few of them
# The loop wakes 0.1 s past each whole second: scrapes stamped up to that second have landed.
SETTLE_SECONDS = 0.0
REVISION_FAULTS = {"bad_rollout", "crashloop"}
NAMESPACE = "boutique"

# Balanced by running time (a control runs --control-minutes, a fault scenario ~3.5 min).
GROUPS: dict[int, list[list[str]]] = {
    1: [
        [
            "control-seasonal-traffic",
            "control-benign-rollout",
            "ad-memory-leak-fast",
            "cart-memory-leak",
            "catalog-cpu-hog",
            "node-a-pressure",
            "catalog-latency",
            "currency-packet-loss",
            "frontend-traffic-surge",
            "redis-down",
            "cart-bad-rollout",
            "checkout-bad-rollout",
            "catalog-crashloop",
        ]
    ],
    2: [
        [
            "control-seasonal-traffic",
            "ad-memory-leak-fast",
            "catalog-cpu-hog",
            "catalog-latency",
            "currency-packet-loss",
            "frontend-traffic-surge",
            "catalog-crashloop",
        ],
        [
            "control-benign-rollout",
            "cart-memory-leak",
            "node-a-pressure",
            "redis-down",
            "cart-bad-rollout",
            "checkout-bad-rollout",
        ],
    ],
    3: [
        ["control-seasonal-traffic", "ad-memory-leak-fast", "catalog-cpu-hog", "catalog-crashloop"],
        ["control-benign-rollout", "node-a-pressure", "currency-packet-loss", "cart-bad-rollout"],
        [
            "cart-memory-leak",
            "frontend-traffic-surge",
            "catalog-latency",
            "redis-down",
            "checkout-bad-rollout",
        ],
    ],
}


def _lab(state_dir: str, rules: str) -> None:
    from aiops_lab.runner import run_lab

    run_lab(Path(state_dir), rps=50.0, scrape_interval="1s", rule_files=[rules])


@dataclass
class Recorder:
    """Everything seen: anomalies from the passes, firing alerts, pass timings."""

    anomalies: list[Observation] = field(default_factory=list)
    alerts: list[Observation] = field(default_factory=list)
    pass_seconds: list[float] = field(default_factory=list)
    failed_passes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def pass_config(args: argparse.Namespace) -> PassConfig:
    return PassConfig(
        step_seconds=STEP,
        prime_seconds=3600.0,
        rate_window=args.rate_window,
        settle_seconds=args.settle_seconds,
    )


def detection_loop(prom_url: str, rec: Recorder, stop: threading.Event, config: PassConfig) -> None:
    # What the daemon watches: the signals marked `detect`, with their floors (the edges, pods
    # pending and the like are for investigation and verification only).
    state = DetectionState(build_signals([], []), config)
    prom = Prometheus(PrometheusSettings(url=prom_url, timeout_s=10.0))
    try:
        while not stop.is_set():
            t0 = time.time()
            now = datetime.now(UTC)
            plans = state.plan(now)
            answers = prom.fetch_many(
                [RangeQuery(p.promql, p.start, p.end, p.step_seconds) for p in plans], parallel=4
            )
            result = state.apply(plans, {p.signal: a for p, a in zip(plans, answers, strict=True)})
            seen = time.time()
            with rec.lock:
                rec.pass_seconds.append(seen - t0)
                rec.failed_passes += bool(result.failed)
                for a in result.anomalies:
                    rec.anomalies.append(
                        Observation(
                            a.signal, dict(a.series), seen, a.start.timestamp(), a.value, a.baseline
                        )
                    )
            # next pass on the next whole second (the grid), plus a little for the scrape
            time.sleep(max(0.05, STEP - (time.time() % STEP) + 0.1))
    finally:
        prom.close()


def alert_loop(prom_url: str, rec: Recorder, stop: threading.Event) -> None:
    seen: set[tuple[str, tuple[tuple[str, str], ...], str]] = set()
    with httpx.Client(timeout=5.0) as client:
        while not stop.is_set():
            try:
                body = client.get(f"{prom_url}/api/v1/alerts").json()
            except (httpx.HTTPError, ValueError):
                time.sleep(STEP)
                continue
            now = time.time()
            for a in body.get("data", {}).get("alerts", []):
                if a.get("state") != "firing":
                    continue
                labels = dict(a.get("labels", {}))
                key = (
                    labels.get("alertname", ""),
                    tuple(sorted(labels.items())),
                    str(a.get("activeAt")),
                )
                if key in seen:
                    continue
                seen.add(key)
                active = datetime.fromisoformat(str(a["activeAt"]).replace("Z", "+00:00"))
                with rec.lock:
                    rec.alerts.append(
                        Observation(labels.get("signal", ""), labels, now, active.timestamp())
                    )
            time.sleep(max(0.05, STEP - (time.time() % STEP) + 0.3))


def _injected(shop_url: str, scheduled: float) -> float:
    """When the simulation actually injected the first fault: it acts on its next tick, up
    to a second after the scheduled time, and nothing can be detected before that."""
    time.sleep(max(0.0, scheduled - time.time()) + 2.0)
    status = httpx.get(f"{shop_url}/lab/status", timeout=10.0).json()
    since = [float(f["since"]) for f in status.get("faults", []) if f.get("since")]
    return min(since) if since else scheduled


def _cleanup(scenario: Scenario, shop_url: str, kubeconfig: str) -> list[str]:
    notes = []
    httpx.post(f"{shop_url}/lab/clear", timeout=10.0)
    revision = [f for f in scenario.faults if f.kind.value in REVISION_FAULTS]
    if revision:
        from aiops.integrations.kubernetes import KubernetesExecutor

        kube = KubernetesExecutor.from_kubeconfig(kubeconfig)
        for f in revision:
            assert f.target is not None
            r = kube.rollout_undo(NAMESPACE, f.target, incident_id=f"bench-{scenario.name}")
            notes.append(f"rolled back {f.target}: {r.ok}")
    return notes


def all_scenarios() -> dict[str, Scenario]:
    """The shipped scenarios and the everyday-noise set, by name."""
    return {**load_all(SCENARIO_DIR), **load_all(EVERYDAY_DIR)}


def run_group(names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    scenarios = all_scenarios()
    results: list[ScenarioResult] = []
    rec = Recorder()
    stop = threading.Event()
    notes: list[str] = []
    keep = args.keep is not None
    if keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.nullcontext(tempfile.mkdtemp(prefix="lab-", dir=args.keep))
        if keep
        else tempfile.TemporaryDirectory(prefix="aiops-labdetect-")
    ) as tmp:
        rules = Path(tmp) / "alerts.yml"
        rule_file = alert_rules(build_signals([], []), window=args.rate_window)
        rules.write_text(yaml.safe_dump(rule_file, sort_keys=False))
        ctx = mp.get_context("spawn")
        lab = ctx.Process(target=_lab, args=(tmp, str(rules)), daemon=True)
        lab.start()
        info_file = Path(tmp) / "lab" / "lab.json"
        deadline = time.time() + 180
        while not info_file.exists():
            if time.time() > deadline or not lab.is_alive():
                raise RuntimeError("the lab did not come up")
            time.sleep(0.5)
        info = json.loads(info_file.read_text())
        lab_up = time.time()
        threads = [
            threading.Thread(
                target=detection_loop,
                args=(info["prometheus_url"], rec, stop, pass_config(args)),
                daemon=True,
            ),
            threading.Thread(
                target=alert_loop, args=(info["prometheus_url"], rec, stop), daemon=True
            ),
        ]
        for t in threads:
            t.start()
        try:
            time.sleep(args.settle)
            for name in names:
                base = scenarios[name]
                control = base.expect.fault == "none"
                s = (
                    lengthen_control(base, args.control_minutes * 60.0)
                    if control
                    else shorten(base, warmup=args.warmup, hold=args.hold)
                )
                r = httpx.post(f"{info['shop_url']}/lab/scenario", content=to_yaml(s), timeout=10.0)
                r.raise_for_status()
                played = time.time()
                body = r.json()
                print(
                    f"[{datetime.now(UTC):%H:%M:%S}] {name}: playing "
                    f"(fault at +{body['faults_at'] - played:.0f}s, "
                    f"ends +{body['ends_at'] - played:.0f}s)",
                    flush=True,
                )
                fault_at = (
                    None
                    if s.fault_onset is None
                    else _injected(info["shop_url"], body["faults_at"] + s.fault_onset)
                )
                time.sleep(max(0.0, body["ends_at"] - time.time()) + 3.0)
                res = ScenarioResult(
                    name=name,
                    root_cause=s.expect.root_cause,
                    fault=str(s.expect.fault),
                    played_at=played,
                    fault_at=fault_at,
                    ends_at=body["ends_at"],
                    step=STEP,
                )
                with rec.lock:
                    res.anomalies = [
                        a for a in rec.anomalies if played <= a.at <= body["ends_at"] + 3.0
                    ]
                    res.alerts = [a for a in rec.alerts if played <= a.at <= body["ends_at"] + 3.0]
                results.append(res)
                notes += [f"{name}: {n}" for n in _cleanup(s, info["shop_url"], info["kubeconfig"])]
                time.sleep(args.cooldown)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=15)
            lab.terminate()
            lab.join(timeout=30)
        with rec.lock:
            startup = [a for a in rec.anomalies if a.at < lab_up + args.settle]
            passes = sorted(rec.pass_seconds)
    return {
        "lab_dir": tmp if keep else None,
        "lab_up": lab_up,
        "results": [r.as_dict() for r in results],
        "raw": [_raw(r) for r in results],
        "notes": notes,
        "startup_anomalies": len(startup),
        "passes": len(passes),
        "failed_passes": rec.failed_passes,
        "pass_p50_s": passes[len(passes) // 2] if passes else None,
        "pass_p99_s": passes[int(len(passes) * 0.99)] if passes else None,
    }


def _raw(r: ScenarioResult) -> dict[str, Any]:
    def obs(o: Observation) -> dict[str, Any]:
        return {
            "signal": o.signal,
            "labels": dict(o.labels),
            "at": o.at,
            "onset": o.onset,
            "value": o.value,
            "baseline": o.baseline,
        }

    return {
        "name": r.name,
        "root_cause": r.root_cause,
        "fault": r.fault,
        "played_at": r.played_at,
        "fault_at": r.fault_at,
        "ends_at": r.ends_at,
        "anomalies": [obs(a) for a in r.anomalies],
        "alerts": [obs(a) for a in r.alerts],
    }


def _from_raw(d: dict[str, Any]) -> ScenarioResult:
    def obs(o: dict[str, Any]) -> Observation:
        return Observation(
            o["signal"], o["labels"], o["at"], o["onset"], o.get("value"), o.get("baseline")
        )

    return ScenarioResult(
        d["name"],
        d["root_cause"],
        d["fault"],
        d["played_at"],
        d["fault_at"],
        d["ends_at"],
        [obs(a) for a in d["anomalies"]],
        [obs(a) for a in d["alerts"]],
        STEP,
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--groups", type=int, default=3, choices=sorted(GROUPS))
    p.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated names, run as one lab; ';' separates labs run in "
        "parallel (default: all, in --groups)",
    )
    p.add_argument("--warmup", type=float, default=30.0, help="fault scenarios' warmup (s)")
    p.add_argument("--hold", type=float, default=150.0, help="seconds observed from the fault")
    p.add_argument("--cooldown", type=float, default=40.0)
    p.add_argument(
        "--settle",
        type=float,
        default=240.0,
        help="live seconds before the first scenario (detector warm-up)",
    )
    p.add_argument(
        "--control-minutes",
        type=float,
        default=10.0,
        help="how long each no-fault control runs (never shorter than shipped)",
    )
    p.add_argument(
        "--rate-window",
        default=RATE_WINDOW,
        help="$window of the catalog's rate() queries, detector and alert rules alike",
    )
    p.add_argument(
        "--settle-seconds",
        type=float,
        default=SETTLE_SECONDS,
        help="each pass scores up to now minus this (scrapes in flight)",
    )
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep each lab's directory (Prometheus data) under this directory",
    )
    p.add_argument("--json", type=Path, default=None, help="write all figures here")
    p.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="print the tables of an earlier --json file instead of running",
    )
    args = p.parse_args()

    if args.worker is not None:
        names = args.scenarios.split(",")
        args.worker.write_text(json.dumps(run_group(names, args)))
        return 0

    if args.from_json is not None:
        groups_out = json.loads(args.from_json.read_text())["groups"]
    else:
        plan = (
            [g.split(",") for g in args.scenarios.split(";")]
            if args.scenarios
            else GROUPS[args.groups]
        )
        started = time.time()
        with tempfile.TemporaryDirectory(prefix="aiops-labdetect-bench-") as tmp:
            procs = []
            for i, names in enumerate(plan):
                out = Path(tmp) / f"group{i}.json"
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    str(out),
                    "--scenarios",
                    ",".join(names),
                    "--warmup",
                    str(args.warmup),
                    "--hold",
                    str(args.hold),
                    "--cooldown",
                    str(args.cooldown),
                    "--settle",
                    str(args.settle),
                    "--control-minutes",
                    str(args.control_minutes),
                    "--rate-window",
                    args.rate_window,
                    "--settle-seconds",
                    str(args.settle_seconds),
                ]
                if args.keep is not None:
                    cmd += ["--keep", str(args.keep.resolve())]
                procs.append((subprocess.Popen(cmd, cwd=REPO), out))
            groups_out = []
            for proc, out in procs:
                if proc.wait() != 0 or not out.exists():
                    print(f"a worker failed (exit {proc.returncode})", file=sys.stderr)
                    return 1
                groups_out.append(json.loads(out.read_text()))
        print(f"wall time {time.time() - started:.0f} s, {len(plan)} labs in parallel")

    results = [_from_raw(d) for g in groups_out for d in g["raw"]]
    order = {n: i for i, n in enumerate(sorted(all_scenarios()))}
    results.sort(key=lambda r: (r.fault == "none", order.get(r.name, 0)))
    print(table(results))
    print()
    for r in results:
        d = r.as_dict()
        if r.fault == "none" or d["false_anomalies"] or d["unmatched_in_fault"] or not r.detected:
            print(f"{r.name}: anomalies (t from {'play' if r.fault_at is None else 'fault'}):")
            for a in d["anomalies"][:12]:
                labels = ",".join(f"{k}={v}" for k, v in sorted(a["series"].items()))
                v, b = a.get("value"), a.get("baseline")
                vb = (
                    ""
                    if v is None
                    else f" value={v:.4g} baseline=" + ("?" if b is None else f"{b:.4g}")
                )
                print(f"    {a['t_s']:+7.1f}s {a['signal']:26} {labels}{vb}")
    s = summary(results)
    for g in groups_out:
        print(
            f"lab: {g['passes']} passes, {g['failed_passes']} with a failed query, pass p50 "
            f"{g['pass_p50_s']:.3f}s p99 {g['pass_p99_s']:.3f}s, startup anomalies "
            f"{g['startup_anomalies']}; {'; '.join(g['notes'])}"
        )
    print(json.dumps(s, indent=2))
    if args.json is not None and args.from_json is None:
        args.json.write_text(
            json.dumps(
                {
                    "summary": s,
                    "groups": groups_out,
                    "args": {k: str(v) for k, v in vars(args).items()},
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
