"""Budget of the lab's shop: backfill time, and CPU/memory of the shop + exporter and of the
Prometheus scraping it every second. Prints figures; not a test.

    uv run python bench/lab_sim_budget.py [--seconds 60] [--days 2] [--step 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psutil
from aiops_lab.backfill import backfill
from aiops_lab.prometheus_config import PrometheusProcess, write_prometheus_config
from aiops_lab.sim.exporter import ShopRunner, serve_metrics
from aiops_lab.sim.shop import Shop
from aiops_lab.sim.static import StaticCluster
from aiops_lab.sim.traffic import Pattern, Traffic


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--step", type=float, default=60.0)
    ap.add_argument("--scrape-interval", default="1s")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        now = time.time()
        r = backfill(Path(tmp) / "data", end=now, days=args.days, step=args.step)
        print(
            f"backfill: {args.days:g} days at {args.step:g} s: {r.samples} samples, "
            f"{r.blocks} blocks in {r.seconds:.1f} s wall, {r.cpu_seconds:.1f} s CPU"
        )

        cluster = StaticCluster(at=now)
        shop = Shop(cluster, traffic=Traffic(50, Pattern.DIURNAL, anchor=r.end))
        shop.continue_from(r.shop)

        def follow(t: float) -> None:
            cluster.at = t

        me = psutil.Process()
        runner = ShopRunner(shop, tick=1.0, before_tick=follow).start()
        server = serve_metrics(shop)
        config = write_prometheus_config(
            Path(tmp) / "prometheus.yml", [server.target], scrape_interval=args.scrape_interval
        )
        t0 = time.perf_counter()
        prom = PrometheusProcess(config, Path(tmp) / "data")
        try:
            prom.wait_ready()
            print(f"prometheus ready in {time.perf_counter() - t0:.1f} s")
            prom.wait_for_scrape("up == 1")
            print(f"first scrape after {time.perf_counter() - t0:.1f} s")
            pp = psutil.Process(prom.proc.pid)
            c_me, c_prom = me.cpu_times(), pp.cpu_times()
            w0 = time.perf_counter()
            peak_me = peak_prom = 0
            while time.perf_counter() - w0 < args.seconds:
                time.sleep(1)
                peak_me = max(peak_me, me.memory_info().rss)
                peak_prom = max(peak_prom, pp.memory_info().rss)
            wall = time.perf_counter() - w0
            d_me = sum(me.cpu_times()[:2]) - sum(c_me[:2])
            d_prom = sum(pp.cpu_times()[:2]) - sum(c_prom[:2])
            series = prom.query("count({__name__=~'.+'})")
            scrapes = prom.query(f"count_over_time(up[{int(wall)}s])")
            print(f"steady state over {wall:.0f} s at scrape {args.scrape_interval}:")
            print(
                f"  shop + exporter : {100 * d_me / wall:5.1f} % of a core, "
                f"RSS peak {peak_me / 2**20:.0f} MiB"
            )
            print(
                f"  prometheus      : {100 * d_prom / wall:5.1f} % of a core, "
                f"RSS peak {peak_prom / 2**20:.0f} MiB"
            )
            print(
                f"  together        : {100 * (d_me + d_prom) / wall:5.1f} % of a core, "
                f"{(peak_me + peak_prom) / 2**20:.0f} MiB"
            )
            print(
                f"  series: {series[0]['value'][1] if series else '?'}, scrapes in the window: "
                f"{scrapes[0]['value'][1] if scrapes else '?'}"
            )
        finally:
            prom.stop()
            runner.stop()
            server.stop()


if __name__ == "__main__":
    main()
