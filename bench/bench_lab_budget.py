"""The running lab's footprint: memory (RSS) and CPU of the lab process and its Prometheus.

Usage: `python3 -m uv run python bench/bench_lab_budget.py [--seconds 60]` — starts the lab with
`aiops lab up` under a temporary state directory (1-second scrape), plays a fault scenario so the
shop is busy, samples for the given time, prints the figures and takes the lab down.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def aiops(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "aiops.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiops-lab-bench-") as tmp:
        env = {**os.environ, "AIOPS_STATE_DIR": tmp}
        started = time.monotonic()
        aiops("lab", "up", env=env)
        up_s = time.monotonic() - started
        info = json.loads((Path(tmp) / "lab" / "lab.json").read_text())
        aiops("lab", "inject", str(REPO / "lab/aiops_lab/scenarios/cart-memory-leak.yaml"), env=env)
        lab = psutil.Process(info["pid"])
        procs = [lab, *lab.children(recursive=True)]
        for p in procs:
            p.cpu_percent(None)
        peak_rss = 0
        cpu_start = sum(sum(p.cpu_times()[:2]) for p in procs)
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            peak_rss = max(peak_rss, sum(p.memory_info().rss for p in procs))
            time.sleep(1.0)
        cpu = sum(sum(p.cpu_times()[:2]) for p in procs) - cpu_start
        wall = time.monotonic() - t0
        per_proc = {p.name(): round(p.memory_info().rss / 2**20) for p in procs}
        aiops("lab", "down", env=env)
    print(f"lab up (backfill of 2 days + start): {up_s:.1f} s")
    print(f"peak RSS, lab + Prometheus: {peak_rss / 2**20:.0f} MiB  (per process MiB: {per_proc})")
    print(f"CPU over {wall:.0f} s at a 1 s scrape: {cpu / wall:.2f} cores")


if __name__ == "__main__":
    main()
