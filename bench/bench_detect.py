"""Benchmark: samples/second scored by the streaming detectors on one core, and their memory.

Run: uv run python bench/bench_detect.py [--series 10000] [--steps 300] [--period 96]
Prints figures only; it is not a test.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import dataclasses
import time
import tracemalloc

import numpy as np

from aiops.detect.multivariate import MultivariateDetector
from aiops.detect.novelty import NoveltyDetector
from aiops.detect.presets import MULTIVARIATE_CONFIG, NOVELTY_CONFIG


def state_bytes(state: object) -> int:
    total = 0
    for f in dataclasses.fields(state):  # type: ignore[arg-type]
        v = getattr(state, f.name)
        if isinstance(v, np.ndarray):
            total += v.nbytes
    return total


def bench_novelty(n: int, steps: int, period: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 5.0, (steps, n))
    x[rng.random((steps, n)) < 0.01] = np.nan  # gaps, as Prometheus returns them
    tracemalloc.start()
    det = NoveltyDetector(n, NOVELTY_CONFIG, period=period)
    det.step(x[0])
    t0 = time.perf_counter()
    for t in range(1, steps):
        det.step(x[t])
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rate = n * (steps - 1) / dt
    sb = state_bytes(det.state)
    print(
        f"novelty  series={n} steps={steps} period={period}: {rate / 1e6:.2f} M samples/s "
        f"({dt / (steps - 1) * 1e3:.2f} ms per step of {n} series)"
    )
    print(
        f"novelty  state per 10,000 series: {sb / n * 10_000 / 2**20:.2f} MiB "
        f"(seasonal ring buffer {period} samples/series); peak traced "
        f"{peak / n * 10_000 / 2**20:.2f} MiB per 10,000 series"
    )
    det0 = NoveltyDetector(n, NOVELTY_CONFIG, period=0)
    print(
        f"novelty  state per 10,000 series without seasonality: "
        f"{state_bytes(det0.state) / n * 10_000 / 2**20:.2f} MiB"
    )


def bench_multivariate(rows: int, dims: int) -> None:
    rng = np.random.default_rng(1)
    train = rng.random((rows, dims))
    test = rng.random((rows, dims))
    det = MultivariateDetector(MULTIVARIATE_CONFIG)
    t0 = time.perf_counter()
    det.fit(train)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    det.score(test)
    dt = time.perf_counter() - t0
    print(
        f"multivariate rows={rows} dims={dims}: fit {fit:.2f} s, score "
        f"{rows * dims / dt / 1e6:.2f} M values/s ({rows / dt:,.0f} rows/s)"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--period", type=int, default=96, help="seasonal period in samples")
    args = p.parse_args()
    bench_novelty(args.series, args.steps, args.period)
    bench_novelty(args.series, args.steps, 0)
    bench_multivariate(20_000, 38)


if __name__ == "__main__":
    main()
