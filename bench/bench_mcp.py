"""Read-tool latency over streamable HTTP against the lab (target: p95 under 100 ms).

    uv run python bench/bench_mcp.py [--calls N]

Starts the lab in this process (a real Prometheus scraping the simulated shop, with backfilled
history, and the lab Kubernetes API), a Temporal dev server when the `temporal` binary is on
PATH, and `aiops mcp --transport http` as a separate process with a bearer token; then calls each
read tool N times through the official `mcp` SDK client (after 3 warm-up calls) and prints
p50 / p95 / max per tool.
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
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from aiops.lab.runner import LabInfo, read_info, run_lab

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
    thread = threading.Thread(target=run_lab, args=(state,),
                              kwargs={"history_days": 0.2, "stop": stop}, daemon=True)
    thread.start()
    wait_for("the lab", lambda: read_info(state) is not None)
    info = read_info(state)
    assert info is not None
    edges = 'sum(rate(istio_requests_total{reporter="destination"}[1m]))'
    wait_for("the first scrapes", lambda: httpx.get(
        info.prometheus_url + "/api/v1/query", params={"query": edges}).json()["data"]["result"])
    return stop, thread, info


def start_temporal(tmp: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    binary = shutil.which("temporal")
    if binary is None:
        return None, "127.0.0.1:1"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless",
         "--db-filename", str(tmp / "temporal.db"), "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for("Temporal", lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True)
    return proc, f"127.0.0.1:{port}"


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("list_incidents", {"limit": 20}),
    ("list_playbooks", {}),
    ("explain_policy", {"action": "k8s.rollout_restart", "name": "cartservice",
                        "namespace": NS}),
    ("query_metrics", {"promql": 'sum by (destination_workload) (rate(istio_requests_total{'
                                 'reporter="destination"}[1m]))'}),
    ("query_metrics range 1h", {"promql": 'sum(rate(istio_requests_total{'
                                          'destination_workload="cartservice"}[1m]))',
                                "start": "-1h", "step": "15s"}),
    ("get_service_health", {"service": "cartservice", "namespace": NS}),
    ("get_topology", {"namespace": NS, "window": "1m"}),
    ("describe_workload", {"namespace": NS, "name": "cartservice"}),
    ("get_events", {"namespace": NS, "limit": 50}),
    ("plot_metric", {"promql": 'sum(rate(istio_requests_total{destination_workload='
                               '"cartservice"}[1m]))', "start": "-1h"}),
]


async def measure(url: str, calls: int) -> list[tuple[str, list[float], str]]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    out = []
    async with Client(streamable_http_client(url, http_client=http)) as client:
        for label, args in CALLS:
            tool = label.split(" ")[0]
            note = ""
            for _ in range(3):
                result = await client.call_tool(tool, args)
                if result.is_error:
                    note = "ERROR: " + "".join(getattr(c, "text", "") for c in result.content)
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                await client.call_tool(tool, args)
                times.append((time.perf_counter() - t0) * 1000)
            out.append((label, times, note[:120]))
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
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
        env.update({
            "FASTMCP_CHECK_FOR_UPDATES": "off", "AIOPS_PROMETHEUS__URL": lab.prometheus_url,
            "AIOPS_KUBERNETES__KUBECONFIG": lab.kubeconfig, "AIOPS_TEMPORAL__ADDRESS": address,
            "AIOPS_PLAYBOOKS_DIR": str(REPO / "playbooks"),
            "AIOPS_POLICIES_DIR": str(REPO / "policies" / "lab.yaml"),
            "AIOPS_MCP__TOKENS": json.dumps({TOKEN: "bench@example.com"}),
        })
        aiops = str(Path(sys.executable).parent / "aiops")
        server = subprocess.Popen([aiops, "mcp", "--transport", "http", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/mcp"
        try:
            wait_for("aiops mcp", lambda: httpx.get(url, timeout=1) is not None)
            results = asyncio.run(measure(url, args.calls))
        finally:
            server.terminate()
            server.wait(15)
            if temporal is not None:
                temporal.terminate()
                temporal.wait(15)
            stop.set()
            thread.join(30)
    print(f"\nMCP read tools over streamable HTTP (bearer token), {args.calls} calls each, "
          f"after 3 warm-up calls; lab with {os.cpu_count()} CPUs")
    print(f"{'tool':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    worst = 0.0
    for label, times, note in results:
        p95 = p(times, 0.95)
        worst = max(worst, p95)
        print(f"{label:28} {statistics.median(times):8.1f} {p95:8.1f} {max(times):8.1f}"
              + (f"   {note}" if note else ""))
    print(f"worst p95: {worst:.1f} ms (target < 100 ms): {'met' if worst < 100 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
