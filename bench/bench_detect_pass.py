"""Benchmark: a whole detection pass over 10,000 series against a real Prometheus.

The bench writes history for 2,000 Istio workloads (request rate and error ratio: 4,000 series)
and 3,000 containers (CPU and memory against the limit: 6,000 series) as OpenMetrics, backfills
it with `promtool tsdb create-blocks-from openmetrics`, starts Prometheus on those blocks and then
runs passes at successive 15 s grid times inside that history: first the cold start (one range
query per signal, priming the detectors), then steady passes (one instant query per signal).

Run: uv run python bench/bench_detect_pass.py [--workloads 2000] [--containers 3000]
     [--prime-min 15] [--passes 10]
The steady passes alternate between the product's client (prometheus-api-client) and the former
httpx bulk path, `--passes` each, so the two are compared under the same load.
Prints figures only; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from aiops.activities.detection import DetectAnomaliesInput, DetectionActivities
from aiops.config import DetectionSettings, PrometheusSettings, Settings
from aiops.detect.catalog import BUILTIN_SIGNALS
from aiops.detect.detection_pass import DetectionState
from aiops.integrations.prometheus import Prometheus, RangeQuery

STEP = 15
USED = {"request_rate", "error_ratio", "cpu_usage", "memory_vs_limit"}


def write_history(path: Path, workloads: int, containers: int, start: int, points: int) -> int:
    rng = np.random.default_rng(0)
    times = start + STEP * np.arange(points)
    out = path.open("w")  # streamed: 100,000 series of history are gigabytes as one string
    n = 0

    def emit(metric: str, labels: list[str], values: np.ndarray) -> None:
        nonlocal n
        for lab, row in zip(labels, values, strict=True):
            head = f"{metric}{{{lab}}} "
            out.write("".join(f"{head}{v:.6g} {t}\n" for v, t in zip(row, times, strict=True)))
            n += len(row)

    out.write("# TYPE istio_requests counter\n")
    base = rng.uniform(5, 200, workloads)[:, None]
    ok = np.cumsum(base * STEP * rng.uniform(0.8, 1.2, (workloads, points)), axis=1)
    err = np.cumsum(base * 0.01 * STEP * rng.uniform(0.5, 1.5, (workloads, points)), axis=1)
    wl = [
        f'reporter="destination",destination_workload="w{i}",'
        f'destination_workload_namespace="ns{i % 20}"'
        for i in range(workloads)
    ]
    emit("istio_requests_total", [f'{w},response_code="200"' for w in wl], ok)
    emit("istio_requests_total", [f'{w},response_code="500"' for w in wl], err)

    pods = [f'namespace="ns{i % 20}",pod="p{i}",container="app"' for i in range(containers)]
    out.write("# TYPE container_cpu_usage_seconds counter\n")
    cpu = np.cumsum(
        rng.uniform(0.05, 2, containers)[:, None]
        * STEP
        * rng.uniform(0.7, 1.3, (containers, points)),
        axis=1,
    )
    emit("container_cpu_usage_seconds_total", pods, cpu)
    out.write("# TYPE container_memory_working_set_bytes gauge\n")
    limit = rng.choice([256, 512, 1024, 2048], containers)[:, None] * 2.0**20
    ws = limit * np.clip(
        0.4 + np.cumsum(rng.normal(0, 0.002, (containers, points)), axis=1), 0.05, 0.95
    )
    emit("container_memory_working_set_bytes", pods, ws)
    out.write("# TYPE container_spec_memory_limit_bytes gauge\n")
    emit("container_spec_memory_limit_bytes", pods, np.repeat(limit, points, axis=1))
    out.write("# EOF\n")
    out.close()
    return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _HttpxBulk:
    """The detection pass's former client (httpx, POSTed form, json.loads), for comparison."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=8))

    def fetch_many(self, queries: list[RangeQuery], parallel: int = 4) -> list[Any]:
        from concurrent.futures import ThreadPoolExecutor

        from aiops.integrations.prometheus import _instant_series

        def one(q: RangeQuery) -> Any:
            form = {"query": q.promql, "time": f"{q.end.timestamp():.3f}", "timeout": "10s"}
            body = json.loads(self.http.post(self.url + "/api/v1/query", data=form).content)
            return [_instant_series(item) for item in body["data"]["result"]]

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return list(pool.map(one, queries))


def _httpx_fetch(url: str, queries: list[RangeQuery]) -> list[object]:
    """The detection pass's former HTTP path (httpx, POSTed form, json.loads), for comparison."""
    from concurrent.futures import ThreadPoolExecutor

    with httpx.Client(timeout=10) as http:

        def one(q: RangeQuery) -> object:
            form = {"query": q.promql, "time": f"{q.end.timestamp():.3f}"}
            return json.loads(http.post(url + "/api/v1/query", data=form).content)

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, queries))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", type=int, default=2000)
    ap.add_argument("--containers", type=int, default=3000)
    ap.add_argument("--prime-min", type=float, default=15)
    ap.add_argument("--passes", type=int, default=10)
    args = ap.parse_args()
    promtool, prometheus = shutil.which("promtool"), shutil.which("prometheus")
    if promtool is None or prometheus is None:
        raise SystemExit("install prometheus (it brings promtool): apt-get install prometheus")

    prime_steps = int(args.prime_min * 60 / STEP)
    points = prime_steps + 2 * args.passes + 10  # the steady passes alternate two clients
    now = int(time.time()) // STEP * STEP - 5 * 60
    start = now - STEP * (points - 1)
    with tempfile.TemporaryDirectory(prefix="aiops-bench-") as tmp:
        om, data = Path(tmp) / "history.om", Path(tmp) / "data"
        t0 = time.perf_counter()
        samples = write_history(om, args.workloads, args.containers, start, points)
        t1 = time.perf_counter()
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data)],
            check=True,
            capture_output=True,
        )
        om.unlink()
        print(
            f"history: {samples:,} samples ({points} x 15 s) written in {t1 - t0:.1f}s, "
            f"backfilled by promtool in {time.perf_counter() - t1:.1f}s"
        )
        config = Path(tmp) / "prometheus.yml"
        config.write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with (Path(tmp) / "prometheus.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.2)
                run(url, Path(tmp), start, points, prime_steps, args.passes)
            finally:
                proc.terminate()
                proc.wait(timeout=30)


def run(url: str, tmp: Path, start: int, points: int, prime_steps: int, passes: int) -> None:
    settings = Settings(
        state_dir=tmp / "state",
        prometheus=PrometheusSettings(url=url, timeout_s=30),
        detection=DetectionSettings(
            interval_s=STEP,
            prime_s=prime_steps * STEP,
            disabled=[s.name for s in BUILTIN_SIGNALS if s.name not in USED],
        ),
    )
    acts = DetectionActivities(settings)
    # Grid times inside the backfilled history (settle_seconds puts the grid 2 s behind `at`).
    first_at = start + STEP * (prime_steps + 6) + 3

    def at(k: int) -> datetime:
        return datetime.fromtimestamp(first_at + STEP * k, UTC)

    prom = Prometheus(settings.prometheus)
    # The cold start split into its parts (pure pass), then as the activity runs it.
    probe = DetectionState(acts.signals, acts.config)
    plans = probe.plan(at(0))
    t = time.perf_counter()
    answers = prom.fetch_many(
        [RangeQuery(p.promql, p.start, p.end, p.step_seconds) for p in plans], parallel=4
    )
    t_fetch = time.perf_counter() - t
    t = time.perf_counter()
    probe.apply(plans, {p.signal: a for p, a in zip(plans, answers, strict=True)})
    t_score = time.perf_counter() - t
    del probe, answers
    t = time.perf_counter()
    cold = acts.run_pass(DetectAnomaliesInput(stream="bench", at=at(0)))
    cold_s = time.perf_counter() - t
    series = cold.checkpoint.series
    print(
        f"cold start: {series:,} series, {prime_steps} steps primed per signal in "
        f"{cold_s:.2f}s (activity; range queries and parsing {t_fetch:.2f}s, scoring "
        f"{t_score:.2f}s)"
    )

    # Steady passes through the activity (queries, scoring, checkpoint file), alternating the
    # product's client (prometheus-api-client) with the former httpx bulk path, so both meet
    # the same load on a shared machine.
    ref = cold.checkpoint
    clients: dict[str, Any] = {"prometheus-api-client": prom, "former httpx": _HttpxBulk(url)}
    times: dict[str, list[float]] = {name: [] for name in clients}
    for k in range(1, 2 * passes + 1):
        name = list(clients)[k % 2]
        acts.prometheus = clients[name]
        t = time.perf_counter()
        out = acts.run_pass(DetectAnomaliesInput(stream="bench", at=at(k), checkpoint=ref))
        times[name].append(time.perf_counter() - t)
        ref = out.checkpoint
        assert all(s.status == "ok" for s in out.signals), out.signals
    acts.prometheus = prom
    for name, spent in times.items():
        print(
            f"steady pass via {name} (activity: {len(USED)} instant queries, {series:,} series "
            f"scored, checkpoint written): median {statistics.median(spent) * 1e3:.0f} ms, "
            f"max {max(spent) * 1e3:.0f} ms over {len(spent)} passes"
        )
    passes = 2 * passes

    # Where the time goes, and the memory, on the pure pass.
    data = (settings.state_dir / "detection" / ref.file).read_bytes()
    state = DetectionState.from_bytes(data, acts.signals, acts.config)
    k = passes + 1
    plans = state.plan(at(k))
    queries = [RangeQuery(p.promql, p.start, p.end, p.step_seconds) for p in plans]
    methods = {
        "prometheus-api-client sequential": lambda: prom.fetch_many(queries, parallel=1),
        "prometheus-api-client 4 parallel": lambda: prom.fetch_many(queries, parallel=4),
        "raw httpx 4 parallel (the former bulk path)": lambda: _httpx_fetch(url, queries),
    }
    spent: dict[str, list[float]] = {name: [] for name in methods}
    for r in range(5):  # interleaved rounds: Prometheus' page cache warms for all alike
        for name in list(methods)[r % 3 :] + list(methods)[: r % 3]:
            t = time.perf_counter()
            methods[name]()
            spent[name].append(time.perf_counter() - t)
    par = prom.fetch_many(queries, parallel=4)

    twin = DetectionState.from_bytes(data, acts.signals, acts.config)
    fetched = {p.signal: a for p, a in zip(plans, par, strict=True)}
    t = time.perf_counter()
    result = state.apply(plans, fetched)
    score_s = time.perf_counter() - t
    tracemalloc.start()  # (slows Python down: measured on a twin, not timed)
    twin.apply(plans, fetched)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    twin = DetectionState.from_bytes(data, acts.signals, acts.config)
    base, _ = tracemalloc.get_traced_memory()
    twin.apply(
        plans,
        {p.signal: a for p, a in zip(plans, prom.fetch_many(queries, parallel=4), strict=True)},
    )
    _, peak_all = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_all -= base
    assert not result.failed, result.failed
    t = time.perf_counter()
    blob = state.to_bytes()
    save_s = time.perf_counter() - t
    t = time.perf_counter()
    DetectionState.from_bytes(blob, acts.signals, acts.config)
    load_s = time.perf_counter() - t
    print(
        f"queries for {series:,} series (median of 5): "
        + ", ".join(f"{name} {statistics.median(v) * 1e3:.0f} ms" for name, v in spent.items())
    )
    print(
        f"scoring {series:,} series (one step, all signals): {score_s * 1e3:.0f} ms; "
        f"checkpoint to_bytes {save_s * 1e3:.0f} ms, from_bytes {load_s * 1e3:.0f} ms"
    )
    per10k = 10_000 / series
    state_bytes = sum(
        a.nbytes
        for st in state._states.values()
        for a in vars(st.tracker.detector.state).values()
        if isinstance(a, np.ndarray)
    )
    print(
        f"memory per 10,000 series: detector arrays {state_bytes * per10k / 2**20:.2f} MiB, "
        f"checkpoint file {len(blob) * per10k / 2**20:.2f} MiB, peak traced while scoring a "
        f"pass {peak * per10k / 2**20:.1f} MiB (with fetching and parsing the answers "
        f"{peak_all * per10k / 2**20:.1f} MiB)"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(
        f"peak resident memory of this process (history writing included): {rss:.0f} MiB; "
        f"detector arrays for all {series:,} series {state_bytes / 2**20:.1f} MiB, checkpoint "
        f"{len(blob) / 2**20:.1f} MiB"
    )
    by_signal = Counter(a.signal for a in result.anomalies)
    print(
        f"anomalies in the synthetic history: {dict(by_signal) or 0} in the last pass; "
        f"checkpoint reference in the workflow history: {len(ref.model_dump_json())} bytes"
    )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
