"""Benchmark: a whole detection pass over 10,000 series against a real Prometheus.

The bench writes history for 2,000 Istio workloads (request rate and error ratio: 4,000 series)
and 3,000 containers (CPU and memory against the limit: 6,000 series) as OpenMetrics, backfills
it with `promtool tsdb create-blocks-from openmetrics`, starts Prometheus on those blocks and then
runs passes at successive 15 s grid times inside that history: first the cold start (one range
query per signal, priming the detectors), then steady passes (one instant query per signal).

Run: uv run python bench/bench_detect_pass.py [--workloads 2000] [--containers 3000]
     [--prime-min 15] [--passes 10] [--keep DIR]
The passes run in a fresh process of their own (history writing and backfilling stay in this
one), so its peak resident memory is the pass's. The steady passes alternate between the pass
as shipped and the same pass with the garbage collector running through it (as before
aiops/detect/gc_pause.py), `--passes` each, so the two are compared under the same load; each
pass is split into queries, scoring and checkpoint. Then each query alone, in the pass's form
(request signals split out of one shared answer, labels renamed in Python) and as the signals'
own PromQL, and the two whole fetches side by side. `--keep DIR` keeps the backfilled history
there and reuses it next time (same sizes), which saves minutes when measuring one change after
another.
Prints figures only; it is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from aiops.activities.detection import DetectAnomaliesInput, DetectionActivities
from aiops.config import DetectionSettings, ProfileSettings, PrometheusSettings, Settings
from aiops.detect import gc_pause
from aiops.detect.catalog import BUILTIN_SIGNALS
from aiops.detect.detection_pass import DetectionState, QueryPlan
from aiops.detect.pass_answers import read_answer
from aiops.integrations.prometheus import RangeQuery

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


class _Timed:
    """Seconds spent in one method of an object, per call (the bench's own instrument); `keep`:
    hold on to the last result (off where it would count in the pass's memory)."""

    def __init__(self, obj: Any, name: str, keep: bool = True) -> None:
        self.spent: list[float] = []
        self.last: Any = None
        inner = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                result = inner(*args, **kwargs)
                if keep:
                    self.last = result
                return result
            finally:
                self.spent.append(time.perf_counter() - t)

        setattr(obj, name, timed)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", type=int, default=2000)
    ap.add_argument("--containers", type=int, default=3000)
    ap.add_argument("--prime-min", type=float, default=15)
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--keep", type=Path, help="keep the backfilled history here and reuse it")
    ap.add_argument(
        "--run", nargs=3, metavar=("URL", "START", "PRIME_STEPS"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.run:  # the child: the passes alone, in a process of their own
        url, first, prime = args.run
        with tempfile.TemporaryDirectory(prefix="aiops-bench-state-") as tmp:
            run(url, Path(tmp), int(first), int(prime), args.passes)
        return
    promtool, prometheus = shutil.which("promtool"), shutil.which("prometheus")
    if promtool is None or prometheus is None:
        raise SystemExit("install prometheus (it brings promtool): apt-get install prometheus")

    prime_steps = int(args.prime_min * 60 / STEP)
    points = prime_steps + 2 * args.passes + 10  # the steady passes alternate two paths
    with tempfile.TemporaryDirectory(prefix="aiops-bench-") as tmp:
        home = args.keep or Path(tmp)
        start = history(home, promtool, args.workloads, args.containers, points)
        config = Path(tmp) / "prometheus.yml"
        config.write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with (Path(tmp) / "prometheus.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={home / 'data'}",
                    "--storage.tsdb.retention.time=10y",
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
                child = [sys.executable, __file__, "--passes", str(args.passes)]
                subprocess.run([*child, "--run", url, str(start), str(prime_steps)], check=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)


def history(home: Path, promtool: str, workloads: int, containers: int, points: int) -> int:
    """Backfill the history into home/data (or reuse the one kept there); its first time."""
    meta_file = home / "history.json"
    meta = {"workloads": workloads, "containers": containers, "points": points}
    if meta_file.exists():
        kept = json.loads(meta_file.read_text())
        if {k: kept[k] for k in meta} == meta:
            print(f"history: reused from {home}")
            return int(kept["start"])
        shutil.rmtree(home / "data", ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    now = int(time.time()) // STEP * STEP - 5 * 60
    start = now - STEP * (points - 1)
    om = home / "history.om"
    t0 = time.perf_counter()
    samples = write_history(om, workloads, containers, start, points)
    t1 = time.perf_counter()
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(home / "data")],
        check=True,
        capture_output=True,
    )
    om.unlink()
    print(
        f"history: {samples:,} samples ({points} x 15 s) written in {t1 - t0:.1f}s, "
        f"backfilled by promtool in {time.perf_counter() - t1:.1f}s"
    )
    meta_file.write_text(json.dumps(meta | {"start": start}))
    return start


def run(url: str, tmp: Path, start: int, prime_steps: int, passes: int) -> None:
    settings = Settings(
        state_dir=tmp / "state",
        prometheus=PrometheusSettings(url=url, timeout_s=30),
        # The families count as live however old the history kept with --keep is.
        profiles=ProfileSettings(lookback_s=30 * 86400),
        detection=DetectionSettings(
            interval_s=STEP,
            prime_s=prime_steps * STEP,
            disabled=[s.name for s in BUILTIN_SIGNALS if s.name not in USED],
        ),
    )
    acts = DetectionActivities(settings)
    assert {s.name for s in acts.signals} == USED, [s.name for s in acts.signals]
    # Grid times inside the backfilled history (settle_seconds puts the grid 2 s behind `at`).
    first_at = start + STEP * (prime_steps + 6) + 3

    def at(k: int) -> datetime:
        return datetime.fromtimestamp(first_at + STEP * k, UTC)

    prom = acts.prometheus
    # The cold start as the activity runs it, split into queries, scoring and checkpoint.
    fetch = _Timed(prom, "fetch_many")
    save = _Timed(acts, "_save")
    t = time.perf_counter()
    cold = acts.run_pass(DetectAnomaliesInput(stream="bench", at=at(0)))
    cold_s = time.perf_counter() - t
    failed = {s.signal: s.error for s in cold.signals if s.status == "failed"}
    primed = [
        max((len(x.values) for x in got), default=0)
        for got in fetch.last
        if not isinstance(got, Exception)
    ]
    fetch.last = None  # the cold start's answers: not part of the steady passes' memory
    print(
        f"cold start: {cold.checkpoint.series:,} series, {prime_steps} steps primed per signal "
        f"in {cold_s:.2f}s (queries and parsing {fetch.spent[-1]:.2f}s, checkpoint "
        f"{save.spent[-1]:.2f}s, scoring the rest); steps fetched per signal within the "
        f"activity's budget: {primed}; failed: {failed or 'none'}"
    )

    # Steady passes through the activity, alternating the pass as shipped with the same pass
    # with the collector running through it, so both meet the same load on a shared machine.
    ref = cold.checkpoint
    paths: dict[str, Any] = {
        "the pass as shipped": gc_pause.gc_paused,
        "the collector running through it": contextlib.nullcontext,
    }
    parts: dict[str, dict[str, list[float]]] = {
        name: {"pass": [], "queries": [], "checkpoint": []} for name in paths
    }
    k = 1
    for _ in range(3):  # the signals that failed to prime catch up first
        if not any(o.status == "failed" for o in cold.signals):
            break
        cold = acts.run_pass(DetectAnomaliesInput(stream="bench", at=at(k), checkpoint=ref))
        ref, k = cold.checkpoint, k + 1
        print(f"catch-up pass {k - 1}: {cold.seconds:.2f}s")
    cold_peak = _peak_rss_mib(reset=True)  # from here on: the steady passes' own peak
    for i in range(2 * passes):
        name = list(paths)[i % 2]
        gc_pause.gc_paused = paths[name]
        fetch = _Timed(prom, "fetch_many", keep=False)
        save = _Timed(acts, "_save")
        t = time.perf_counter()
        out = acts.run_pass(DetectAnomaliesInput(stream="bench", at=at(k + i), checkpoint=ref))
        parts[name]["pass"].append(time.perf_counter() - t)
        parts[name]["queries"].append(fetch.spent[-1])
        parts[name]["checkpoint"].append(save.spent[-1])
        del prom.fetch_many, acts._save  # the instruments off again
        ref = out.checkpoint
        assert all(s.status == "ok" for s in out.signals), out.signals
    steady_peak = _peak_rss_mib()
    gc_pause.gc_paused = paths["the pass as shipped"]
    series = ref.series
    for name, p in parts.items():
        med = {part: statistics.median(v) * 1e3 for part, v in p.items()}
        print(
            f"steady pass, {name} (activity: {len(USED)} instant queries, {series:,} series "
            f"scored, checkpoint): median {med['pass']:.0f} ms, max {max(p['pass']) * 1e3:.0f} "
            f"ms over {len(p['pass'])} passes; medians: queries {med['queries']:.0f} ms, "
            f"checkpoint {med['checkpoint']:.0f} ms, scoring and the rest "
            f"{med['pass'] - med['queries'] - med['checkpoint']:.0f} ms"
        )

    # Prometheus' own share: each query alone, with its evaluation time as Prometheus reports it,
    # in the pass's form (shared answers, renames in Python) and as the signals' own PromQL.
    when = ref.at
    forms = {sig.name: sig.pass_query(acts.config.rate_window) for sig in acts.signals}
    own = {sig.name: sig.render(window=acts.config.rate_window) for sig in acts.signals}

    def evaluation(promql: str) -> tuple[float, float]:
        form = {"query": promql, "stats": "all", "time": f"{when.timestamp():.3f}"}
        t = time.perf_counter()
        body = httpx.post(url + "/api/v1/query", data=form, timeout=60).json()
        return body["data"]["stats"]["timings"]["execTotalTime"], time.perf_counter() - t

    shared = {
        q: "+".join(n for n, f in forms.items() if f.promql == q)
        for q in dict.fromkeys(f.promql for f in forms.values())
    }
    for title, queries in (
        ("the pass's form", shared),
        ("the signals' own PromQL", {q: n for n, q in own.items()}),
    ):
        timed = {
            name: statistics.median([evaluation(q)[0] for _ in range(3)])
            for q, name in queries.items()
        }
        print(
            f"each query alone, {title}: Prometheus' evaluation (stats=all execTotalTime, "
            "median of 3): "
            + ", ".join(f"{n} {e * 1e3:.0f} ms" for n, e in timed.items())
            + f"; in all {sum(timed.values()) * 1e3:.0f} ms"
        )
    # The whole fetch, side by side under the same load: the pass's queries (read into the
    # signals' series) against the signals' own PromQL.
    plans = [QueryPlan(n, f.promql, when, when, STEP, False, f) for n, f in forms.items()]
    side: dict[str, list[float]] = {"pass form": [], "own PromQL": []}
    for _ in range(passes):
        t = time.perf_counter()
        with gc_pause.gc_paused():  # as the pass fetches
            got = prom.fetch_many([RangeQuery(q.promql, when, when, STEP) for q in plans])
            for plan, g in zip(plans, got, strict=True):
                assert isinstance(g, list), g
                read_answer(plan, g)
        side["pass form"].append(time.perf_counter() - t)
        t = time.perf_counter()
        with gc_pause.gc_paused():
            prom.fetch_many([RangeQuery(q, when, when, STEP) for q in own.values()])
        side["own PromQL"].append(time.perf_counter() - t)
    print(
        "the pass's queries, fetched and read, side by side over "
        f"{passes} rounds (median / max): "
        + ", ".join(
            f"{k} {statistics.median(v) * 1e3:.0f} / {max(v) * 1e3:.0f} ms" for k, v in side.items()
        )
    )

    # The checkpoint's cost, and the memory, on the pure pass.
    state = acts._cache["bench"][1]
    t = time.perf_counter()
    blob = state.to_bytes()
    save_s = time.perf_counter() - t
    t = time.perf_counter()
    DetectionState.from_bytes(blob, acts.signals, acts.config)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    acts._save("bench", "written", state, ref.at, write=True)  # as a pass that writes does
    write_s = time.perf_counter() - t
    every = settings.detection.checkpoint_every_s / STEP
    print(
        f"checkpoint of {series:,} series: {len(blob) / 2**20:.1f} MiB, to_bytes "
        f"{save_s * 1e3:.0f} ms, from_bytes {load_s * 1e3:.0f} ms; a pass that writes it "
        f"(1 in {every:.0f} here) adds {write_s * 1e3:.0f} ms (serialise, sha256, write)"
    )
    state_bytes = sum(
        a.nbytes
        for st in state._states.values()
        for a in vars(st.tracker.detector.state).values()
        if isinstance(a, np.ndarray)
    )
    print(
        f"peak resident memory of the process running the passes: {cold_peak:.0f} MiB through "
        f"the cold start, {steady_peak:.0f} MiB through the steady passes; detector arrays for "
        f"all {series:,} series {state_bytes / 2**20:.1f} MiB"
    )
    print(
        f"anomalies in the synthetic history: {len(out.anomalies)} in the last pass; "
        f"checkpoint reference in the workflow history: {len(ref.model_dump_json())} bytes"
    )


def _peak_rss_mib(reset: bool = False) -> float:
    """This process's peak resident memory (VmHWM); `reset` starts a new peak (Linux)."""
    status = Path("/proc/self/status").read_text()
    peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    return peak / 1024


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
