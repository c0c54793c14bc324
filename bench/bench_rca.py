"""Ranking time per root-cause case (the live target: a whole investigation under 2 s).

    uv run python bench/bench_rca.py [DIR ...] [--repeat N]

DIR defaults to the development sets under $AIOPS_DATASETS (../shared/datasets). Prints, per case,
the matrix size, its service-graph edges (edges.csv, when present) and the best / median ranking
time over N repeats, then a summary per folder and a synthetic worst case (60 services x 40
metrics, 2 h at 15 s steps, with a call graph and changes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from aiops_lab.eval.rca_cases import load_cases

from aiops.rca import ChangeEvent, ChangeKind, EdgeSeries, MetricsMatrix, rank

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("AIOPS_DATASETS", REPO.parent / "shared" / "datasets"))


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_folder(root: Path, repeat: int) -> list[float]:
    t0 = time.perf_counter()
    cases = load_cases(root)
    load_s = time.perf_counter() - t0
    print(f"\n{root} ({len(cases)} cases, loaded in {load_s * 1000:.0f} ms)")
    print(f"{'case':<46}{'rows':>6}{'cols':>6}{'edges':>6}{'best ms':>9}{'median ms':>11}")
    medians = []
    for c in cases:
        ts = timed(lambda c=c: rank(c.matrix, c.inject_time, edges=c.edges), repeat)
        medians.append(statistics.median(ts))
        rows, cols = c.matrix.values.shape
        print(
            f"{c.name:<46}{rows:>6}{cols:>6}{len(c.edges):>6}"
            f"{min(ts) * 1000:>9.1f}{medians[-1] * 1000:>11.1f}"
        )
    print(
        f"summary: median {statistics.median(medians) * 1000:.1f} ms, "
        f"max {max(medians) * 1000:.1f} ms per case"
    )
    return medians


def bench_synthetic(repeat: int) -> None:
    rng = np.random.default_rng(0)
    services = [f"svc{i}" for i in range(60)]
    metrics = [f"m{j}" for j in range(40)]
    times = 1_700_000_000 + 15.0 * np.arange(480)
    cols = tuple(f"{s}_{m}" for s in services for m in metrics)
    values = 10 + rng.standard_normal((times.size, len(cols)))
    values[400:, 5] *= 10
    m = MetricsMatrix(times=times, columns=cols, values=values)
    graph = [(services[i], services[j]) for i in range(60) for j in range(i + 1, min(60, i + 4))]
    at = datetime.fromtimestamp(float(times[390]), tz=UTC)
    changes = [ChangeEvent(service=s, kind=ChangeKind.ROLLOUT, at=at) for s in services[:5]]
    ts = timed(lambda: rank(m, float(times[400]), call_graph=graph, changes=changes), repeat)
    print(
        f"\nsynthetic 60 services x 40 metrics x {times.size} rows, graph {len(graph)} edges: "
        f"best {min(ts) * 1000:.1f} ms, median {statistics.median(ts) * 1000:.1f} ms"
    )
    latency = 0.01 * (1 + 0.05 * rng.standard_normal((len(graph), times.size)))
    edges = [
        EdgeSeries(
            client=a,
            server=b,
            times=times,
            calls=np.full(times.size, 20.0),
            client_latency=latency[i] + 0.002,
            server_latency=latency[i],
        )
        for i, (a, b) in enumerate(graph)
    ]
    ts = timed(lambda: rank(m, float(times[400]), changes=changes, edges=edges), repeat)
    print(
        f"same, with those {len(edges)} edges' series: "
        f"best {min(ts) * 1000:.1f} ms, median {statistics.median(ts) * 1000:.1f} ms"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("dirs", nargs="*", type=Path)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    dirs = args.dirs or [
        d for d in (DATASETS / "rca-dev", DATASETS / "rca-dev-sockshop") if d.is_dir()
    ]
    for d in dirs:
        bench_folder(d, args.repeat)
    bench_synthetic(args.repeat)


if __name__ == "__main__":
    main()
