"""Read-tool latency over streamable HTTP against the lab (target: p95 under 100 ms).

    uv run python bench/bench_mcp.py [--calls N]

Starts the lab in this process (a real Prometheus scraping the simulated shop, with backfilled
history, and the lab Kubernetes API), a Temporal dev server when the `temporal` binary is on
PATH, and `aiops mcp --transport http` as a separate process with a bearer token; then calls each
read tool N times through the official `mcp` SDK client (after 3 warm-up calls) and prints
p50 / p95 / max per tool, and the first (cold) call of each tool in the fresh server process.

So that the incident tools (get_incident, list_anomalies, get_audit_trail) read real incidents,
the bench also runs the shipped worker (`aiops worker`) against the lab, plays the
cart-bad-rollout scenario and opens --incidents incidents on cartservice, and waits until each
has been investigated and planned (waiting for approval, or closed) before measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import httpx2
from aiops_lab.runner import LabInfo, read_info, run_lab
from aiops_lab.scenario import SCENARIO_DIR
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from aiops.domain import Anomaly, Direction, Incident

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789"  # noqa: S105 - a throwaway token for the local server
NS = "boutique"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError, ValueError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}")


def start_lab(state: Path) -> tuple[threading.Event, threading.Thread, LabInfo]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_lab, args=(state,), kwargs={"history_days": 0.2, "stop": stop}, daemon=True
    )
    thread.start()
    wait_for("the lab", lambda: read_info(state) is not None)
    info = read_info(state)
    assert info is not None
    edges = 'sum(rate(istio_requests_total{reporter="destination"}[1m]))'
    wait_for(
        "the first scrapes",
        lambda: httpx.get(info.prometheus_url + "/api/v1/query", params={"query": edges}).json()[
            "data"
        ]["result"],
    )
    return stop, thread, info


def start_temporal(tmp: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    binary = shutil.which("temporal")
    if binary is None:
        return None, "127.0.0.1:1"
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--headless",
            "--db-filename",
            str(tmp / "temporal.db"),
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for("Temporal", lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True)
    return proc, f"127.0.0.1:{port}"


def open_incidents(lab: LabInfo, address: str, count: int) -> list[str]:
    """Play a bad rollout of cartservice and open `count` incidents on it through the shipped
    intake; return their ids once each has reached the approval gate or closed."""
    from aiops.config import Settings
    from aiops.incidents import IncidentClient, load_rules
    from aiops.integrations.temporal import connect
    from workflows.incident import IncidentWorkflow

    scenario = (
        (SCENARIO_DIR / "cart-bad-rollout.yaml").read_text().replace("warmup: 90s", "warmup: 0s")
    )
    httpx.post(f"{lab.shop_url}/lab/scenario", content=scenario.encode(), timeout=10)
    time.sleep(20)  # let the errors show in a few scrapes
    settings = Settings(
        temporal={"address": address},
        playbooks_dir=REPO / "playbooks",
        policies_dir=REPO / "policies" / "lab.yaml",
    )
    rules = load_rules(settings)

    async def run() -> list[str]:
        client = await connect(settings.temporal)
        incidents = IncidentClient(client, settings.temporal.task_queue)
        now = datetime.now(UTC)
        ids = []
        for i in range(count):
            incident = Incident(
                id=f"incident-bench-{i}-{int(now.timestamp())}",
                fingerprint=f"bench{i}",
                namespace=NS,
                service="cartservice",
                opened_at=now,
                anomalies=[
                    Anomaly(
                        signal="error_ratio",
                        series={"namespace": NS, "workload": "cartservice"},
                        query='sum(rate(istio_requests_total{destination_workload="cartservice",'
                        'response_code=~"5.."}[1m]))',
                        start=now,
                        score=0.99,
                        direction=Direction.UP,
                    )
                ],
            )
            handle = await incidents.open_or_join(incident, rules, index=True)
            ids.append(handle.id)
        for workflow_id in ids:
            handle = incidents.handle(workflow_id)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                status = await handle.query(IncidentWorkflow.status)
                if status.value not in ("open", "investigating", "planning"):
                    break
                await asyncio.sleep(0.5)
        return ids

    return asyncio.run(run())


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("list_incidents", {"limit": 20}),
    ("list_playbooks", {}),
    ("explain_policy", {"action": "k8s.rollout_restart", "name": "cartservice", "namespace": NS}),
    (
        "query_metrics",
        {
            "promql": "sum by (destination_workload) (rate(istio_requests_total{"
            'reporter="destination"}[1m]))'
        },
    ),
    (
        "query_metrics range 1h",
        {
            "promql": 'sum(rate(istio_requests_total{destination_workload="cartservice"}[1m]))',
            "start": "-1h",
            "step": "15s",
        },
    ),
    ("get_service_health", {"service": "cartservice", "namespace": NS}),
    ("get_topology", {"namespace": NS, "window": "1m"}),
    ("describe_workload", {"namespace": NS, "name": "cartservice"}),
    ("get_events", {"namespace": NS, "limit": 50}),
    (
        "plot_metric",
        {
            "promql": 'sum(rate(istio_requests_total{destination_workload="cartservice"}[1m]))',
            "start": "-1h",
        },
    ),
]


def incident_calls(incident_id: str, pod: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("get_incident", {"incident_id": incident_id}),
        ("list_anomalies", {"limit": 10}),
        ("get_audit_trail", {"incident_id": incident_id}),
        ("get_pod_logs", {"namespace": NS, "pod": pod, "tail_lines": 200}),
    ]


def a_cart_pod(lab: LabInfo) -> str:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    api = k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=lab.kubeconfig))
    pods = api.list_namespaced_pod(NS, label_selector="app=cartservice").items
    return str(pods[0].metadata.name)


Result = tuple[str, float, list[float], str]


async def measure(url: str, calls: int, extra: list[tuple[str, dict[str, Any]]]) -> list[Result]:
    """Per tool: the first (cold) call in this server process, then `calls` timed calls after
    two more warm-up calls."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    out = []
    async with Client(streamable_http_client(url, http_client=http)) as client:
        for label, args in [*CALLS, *extra]:
            tool = label.split(" ")[0]
            note = ""
            first = 0.0
            for i in range(3):
                t0 = time.perf_counter()
                result = await client.call_tool(tool, args)
                if i == 0:
                    first = (time.perf_counter() - t0) * 1000
                if result.is_error:
                    note = "ERROR: " + "".join(getattr(c, "text", "") for c in result.content)
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                await client.call_tool(tool, args)
                times.append((time.perf_counter() - t0) * 1000)
            out.append((label, first, times, note[:120]))
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument(
        "--incidents", type=int, default=5, help="incidents opened before measuring (default 5)"
    )
    args = parser.parse_args()
    if shutil.which("prometheus") is None:
        print("prometheus is not installed (apt-get install prometheus)")
        return 2
    with tempfile.TemporaryDirectory(prefix="aiops-bench-mcp-") as tmpdir:
        tmp = Path(tmpdir)
        stop, thread, lab = start_lab(tmp / "lab")
        temporal, address = start_temporal(tmp)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
        env.update(
            {
                "FASTMCP_CHECK_FOR_UPDATES": "off",
                "AIOPS_PROMETHEUS__URL": lab.prometheus_url,
                "AIOPS_KUBERNETES__KUBECONFIG": lab.kubeconfig,
                "AIOPS_TEMPORAL__ADDRESS": address,
                "AIOPS_PLAYBOOKS_DIR": str(REPO / "playbooks"),
                "AIOPS_POLICIES_DIR": str(REPO / "policies" / "lab.yaml"),
                "AIOPS_MCP__TOKENS": json.dumps({TOKEN: "bench@example.com"}),
            }
        )
        aiops = str(Path(sys.executable).parent / "aiops")
        worker = (
            subprocess.Popen(
                [aiops, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if temporal is not None
            else None
        )
        server = subprocess.Popen(
            [aiops, "mcp", "--transport", "http", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/mcp"
        try:
            extra: list[tuple[str, dict[str, Any]]] = []
            if temporal is not None:
                ids = open_incidents(lab, address, args.incidents)
                extra = incident_calls(ids[0], a_cart_pod(lab))
            wait_for("aiops mcp", lambda: httpx.get(url, timeout=1) is not None)
            results = asyncio.run(measure(url, args.calls, extra))
        finally:
            for proc in (server, worker):
                if proc is not None:
                    proc.terminate()
                    proc.wait(15)
            if temporal is not None:
                temporal.terminate()
                temporal.wait(15)
            stop.set()
            thread.join(30)
    print(
        f"\nMCP read tools over streamable HTTP (bearer token), {args.calls} calls each, "
        f"after 3 warm-up calls; lab with {os.cpu_count()} CPUs"
    )
    print(f"{'tool':28} {'first ms':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    worst = 0.0
    for label, first, times, note in results:
        p95 = p(times, 0.95)
        worst = max(worst, p95)
        print(
            f"{label:28} {first:9.1f} {statistics.median(times):8.1f} {p95:8.1f} "
            f"{max(times):8.1f}" + (f"   {note}" if note else "")
        )
    print(f"worst p95: {worst:.1f} ms (target < 100 ms): {'met' if worst < 100 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
