"""A storm of incidents on ONE worker's investigation queue: none may time out unreported.

    uv run python bench/bench_investigation_queue.py [--incidents 200] [--limit-s 60]

What runs (real, on loopback): the lab (`aiops lab up`: the simulated shop on the simulated
cluster, its Kubernetes API, a real Prometheus with two days of backfilled history) with
cartservice leaking memory, and the shipped investigate activity (the LangGraph investigation on
the lab's Prometheus and Kubernetes API, no LLM) with the worker's queue of one investigation per
core. N incidents (bench_incidents.py's, one per shop workload in turn) call it at once, each
with the incident workflow's 60 s activity limit, through Temporal's activity environment.

Twice: with the queue's rule (the wait for a slot ends when only the time an investigation needs
is left; then the incident is reported "not investigated" with the reason), and without a limit
(as before the rule: the activity waited for its turn however long it took). Per run: how many
were investigated, how many said why not, how many answered after their activity's limit (in a
worker those time out and are retried with nothing reported), and answer times.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from aiops_lab import commands
from temporalio.testing import ActivityEnvironment

from aiops.activities.contracts import InvestigateInput
from aiops.activities.deadline import REPLY_MARGIN_S
from aiops.activities.incident import AgentInvestigator, IncidentActivities
from aiops.agent.graph import AgentDeps
from aiops.config import PrometheusSettings
from aiops.integrations.kubernetes.client import kubeconfig_api_client
from aiops.integrations.kubernetes.readers import KubernetesReader
from aiops.integrations.prometheus import Prometheus

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_incidents import make_incident, start_lab


async def storm(
    activities: IncidentActivities, count: int, limit_s: float | None, onset: datetime
) -> list[tuple[str, float]]:
    """(outcome, seconds to answer) of `count` investigations started at once."""
    env = ActivityEnvironment()
    timeout = None if limit_s is None else timedelta(seconds=limit_s)
    env.info = dataclasses.replace(env.info, start_to_close_timeout=timeout)
    run_id = os.urandom(2).hex()
    started = time.monotonic()

    async def one(i: int) -> tuple[str, float]:
        incident = make_incident(run_id, i, onset)
        report = await env.run(activities.investigate_incident, InvestigateInput(incident=incident))
        skipped = report.summary.startswith("not investigated")
        return ("not investigated" if skipped else "investigated"), time.monotonic() - started

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, results: list[tuple[str, float]], limit_s: float) -> None:
    times = [t for _, t in results]
    late = sum(t > limit_s - REPLY_MARGIN_S for t in times)
    investigated = sum(o == "investigated" for o, _ in results)
    print(
        f"{label}: {investigated} investigated, {len(results) - investigated} reported not "
        f"investigated, {late} answered after the {limit_s:.0f} s limit (less the reply margin); "
        f"answer p50 {statistics.median(times):.1f} s, p95 {pct(times, 0.95):.1f} s, max "
        f"{max(times):.1f} s"
    )


async def bench(args: argparse.Namespace, tmp: Path) -> None:
    lab, onset = start_lab(tmp / "lab-state")
    try:
        await asyncio.sleep(args.fault_lead_s)  # let the leak show in the metrics
        metrics = Prometheus(PrometheusSettings(url=lab.prometheus_url))
        reader = KubernetesReader(kubeconfig_api_client(lab.kubeconfig))
        parallel = os.cpu_count() or 1
        runs = [("with the queue's rule", args.limit_s), ("without a limit", None)]
        for label, limit in reversed(runs) if args.unlimited_first else runs:
            investigator = AgentInvestigator(AgentDeps(metrics=metrics, cluster=reader), parallel)
            activities = IncidentActivities(investigator=investigator)
            t0 = time.monotonic()
            results = await storm(activities, args.incidents, limit, onset)
            wall = time.monotonic() - t0
            print(f"\n{args.incidents} incidents, {parallel} slots, {label}: wall {wall:.0f} s")
            report(label, results, args.limit_s)
    finally:
        print(commands.down(tmp / "lab-state"), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--limit-s", type=float, default=60.0, help="the activity's limit")
    parser.add_argument("--fault-lead-s", type=float, default=60.0)
    parser.add_argument(
        "--unlimited-first", action="store_true", help="run the storm without a limit first"
    )
    args = parser.parse_args()
    if shutil.which("prometheus") is None:
        print("prometheus is not on PATH; run deploy/bootstrap.sh and use `uv run`")
        return 2
    with tempfile.TemporaryDirectory(prefix="aiops-bench-queue-") as tmpdir:
        asyncio.run(bench(args, Path(tmpdir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
