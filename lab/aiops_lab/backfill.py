"""History for the lab's Prometheus: days of a healthy shop with a daily traffic pattern, so that
detectors have a baseline from the first minute.

The shop is simulated over a static default layout at `step` resolution, written as OpenMetrics
(one file per 2-hour block window, so each promtool run parses only its own window; promtool
2.42 re-reads its whole input once per block otherwise), and turned into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics`, several windows in parallel. Run it before
Prometheus starts, on the data directory Prometheus will use.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiops_lab.prometheus_config import DEFAULT_INSTANCE, DEFAULT_JOB
from aiops_lab.sim.exposition import render_openmetrics_samples
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.static import StaticCluster
from aiops_lab.sim.traffic import Pattern, Traffic

BLOCK_SECONDS = 2 * 3600


class BackfillError(RuntimeError):
    pass


@dataclass
class BackfillResult:
    start: float
    end: float
    step: float
    samples: int
    blocks: int
    seconds: float  # wall clock
    cpu_seconds: float  # user + system, this process and promtool together
    shop: Shop  # the history's shop: `Shop.continue_from` keeps live counters monotonic


def backfill(
    data_dir: str | Path,
    *,
    end: float | None = None,
    days: float = 2.0,
    step: float = 60.0,
    rps: float = 50.0,
    seed: int = 0,
    promtool: str | None = None,
    workers: int | None = None,
    job: str = DEFAULT_JOB,
    instance: str = DEFAULT_INSTANCE,
    fine_tail: float = 0.0,
    fine_step: float = 5.0,
    metrics: str = "istio",
) -> BackfillResult:
    """Write `days` of normal history ending at `end` (default: now) into `data_dir`.

    `fine_tail`: the last seconds of history are written every `fine_step` seconds instead of
    every `step`. A detection pass that scores every second primes its detectors from the last
    hour of history with `rate(...[1m])`; over 60 s samples such a window holds one sample and
    the rate is absent, so without a fine tail every series would look new at lab start and the
    detector would stay silent for its warm-up (200 samples) on live data.

    `metrics`: the request-metrics flavour (istio, otel, linkerd) the history is written in.

    `job` and `instance` must be what Prometheus attaches to the live scrape (see
    `write_prometheus_config`), so that history and live samples are the same series."""
    t0 = time.perf_counter()
    cpu0 = _cpu()
    tool = promtool or shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(tool).exists() and shutil.which(tool) is None:
        raise BackfillError(f"promtool not found ({tool}); install the Debian package prometheus")
    if step < 1 or fine_step < 1:
        raise BackfillError(f"step and fine_step must be at least 1 s, got {step}, {fine_step}")
    end_t = float(end if end is not None else time.time())
    end_t -= end_t % (fine_step if fine_tail > 0 else step)
    start = end_t - days * 86400.0
    start -= start % step
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)

    cluster = StaticCluster(at=start)
    shop = Shop(
        cluster,
        seed=seed,
        traffic=Traffic(rps=rps, pattern=Pattern.DIURNAL, seed=seed, anchor=end_t),
        metrics=metrics,
    )
    samples = 0
    fine_from = end_t - fine_tail
    extra = (("instance", instance), ("job", job))

    def convert(path: Path) -> None:
        proc = subprocess.run(
            [tool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(path), str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        path.unlink()
        if proc.returncode != 0:
            raise BackfillError(f"promtool failed on {path.name}: {proc.stderr.strip()}")

    # Windows are converted while later ones are still being simulated: one core simulates,
    # the other runs promtool.
    with (
        tempfile.TemporaryDirectory(prefix="aiops-backfill-") as tmp,
        ThreadPoolExecutor(max_workers=workers or max((os.cpu_count() or 2) - 1, 1)) as pool,
    ):
        futures = []
        t = start
        while t < end_t:
            w = int(t // BLOCK_SECONDS)
            w_end = min((w + 1) * BLOCK_SECONDS, end_t)
            path = Path(tmp) / f"w{w}.om"
            with path.open("w", encoding="utf-8") as fh:
                while t < w_end:
                    cluster.at = t
                    shop.step(t)
                    text = render_openmetrics_samples(shop.families(), t, extra)
                    samples += text.count("\n")
                    fh.write(text)
                    t += fine_step if t >= fine_from else step
                fh.write("# EOF\n")
            futures.append(pool.submit(convert, path))
        for f in futures:
            f.result()
    blocks = sum(1 for p in out.iterdir() if p.is_dir() and len(p.name) == 26)
    return BackfillResult(
        start, end_t, step, samples, blocks, time.perf_counter() - t0, _cpu() - cpu0, shop
    )


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", help="Prometheus data directory (before Prometheus starts)")
    p.add_argument("--days", type=float, default=2.0, help="history length (default 2)")
    p.add_argument("--step", type=float, default=60.0, help="resolution in seconds (default 60)")
    p.add_argument("--rps", type=float, default=50.0, help="mean frontend requests per second")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    try:
        r = backfill(args.data_dir, days=args.days, step=args.step, rps=args.rps, seed=args.seed)
    except BackfillError as e:
        print(f"backfill failed: {e}")
        return 1
    print(
        f"backfilled {r.samples} samples in {r.blocks} blocks "
        f"({(r.end - r.start) / 86400:.1f} days at {r.step:g} s) in {r.seconds:.1f} s "
        f"({r.cpu_seconds:.1f} CPU s)"
    )
    return 0
