"""Replay a recorded lab detection run through the current detection pass, in seconds.

`bench_lab_detection.py --keep DIR --json run.json` keeps each lab's Prometheus data; this script
starts a Prometheus on a copy of each, fetches every catalog signal over the whole run at the
pass's grid step once, and then plays the passes exactly as the live loop ran them (a cold
priming pass at the lab's start, then one grid time per pass), slicing the fetched answers per
pass. The lab does not depend on the detector, so a recording scores any detector setting
offline. The time an anomaly is seen is its grid time plus the pass's `settle_seconds` plus
0.1 s (when the live loop runs); alert times are the recording's own.

Usage:
    python3 -m uv run python bench/replay_lab_detection.py run.json [--settle-seconds 0] \
        [--rate-window 15s] [--verbose]

The recording's alerts were evaluated with its own rate window (see its args).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from aiops_lab.eval.lab_detection import Observation, ScenarioResult, summary, table  # noqa: E402
from aiops_lab.prometheus_config import PrometheusProcess, write_prometheus_config  # noqa: E402
from bench_lab_detection import RATE_WINDOW, SETTLE_SECONDS, STEP, _from_raw  # noqa: E402

from aiops.config import PrometheusSettings  # noqa: E402
from aiops.detect.catalog import BUILTIN_SIGNALS  # noqa: E402
from aiops.detect.detection_pass import DetectionState, PassConfig  # noqa: E402
from aiops.integrations.prometheus import Prometheus, RangeQuery  # noqa: E402


@dataclass
class _Slice:
    labels: dict[str, str]
    timestamps: list[float]
    values: list[float]


class _Recorded:
    """One signal's answer over the whole run, as a dense [time, series] grid."""

    def __init__(self, series: list[Any], start: float, n: int) -> None:
        self.labels = [dict(s.labels) for s in series]
        self.grid = np.full((n, len(series)), np.nan)
        self.present = np.zeros((n, len(series)), bool)
        for j, s in enumerate(series):
            idx = np.rint((np.asarray(s.timestamps) - start) / STEP).astype(int)
            ok = (idx >= 0) & (idx < n)
            self.grid[idx[ok], j] = np.asarray(s.values, float)[ok]
            self.present[idx[ok], j] = True
        self.start = start

    def between(self, a: float, b: float) -> list[_Slice]:
        i, k = round((a - self.start) / STEP), round((b - self.start) / STEP) + 1
        i = max(i, 0)
        out = []
        for j in np.flatnonzero(self.present[i:k].any(axis=0)).tolist():
            rows = np.flatnonzero(self.present[i:k, j])
            out.append(
                _Slice(
                    self.labels[j],
                    [self.start + (i + r) * STEP for r in rows],
                    self.grid[i + rows, j].tolist(),
                )
            )
        return out


def replay_group(group: dict[str, Any], config: PassConfig, verbose: bool) -> list[ScenarioResult]:
    results = [_from_raw(d) for d in group["raw"]]
    lab_up = float(group["lab_up"])
    end = max(r.ends_at for r in results) + 3.0
    first = math.floor((lab_up - config.settle_seconds) / STEP) * STEP
    prime_from = first - config.prime_seconds
    n = round((end - prime_from) / STEP) + 1
    with tempfile.TemporaryDirectory(prefix="aiops-replay-") as tmp:
        data = Path(tmp) / "prometheus"
        shutil.copytree(Path(group["lab_dir"]) / "lab" / "prometheus", data)
        for lock in data.glob("lock"):
            lock.unlink()
        cfg = write_prometheus_config(Path(tmp) / "prometheus.yml", ["127.0.0.1:9"])
        with PrometheusProcess(cfg, data, retention="30d") as prom:
            prom.wait_ready(60)
            client = Prometheus(PrometheusSettings(url=prom.url, timeout_s=120.0))
            try:
                state = DetectionState(list(BUILTIN_SIGNALS), config)
                plans = state.plan(_dt(first + config.settle_seconds))
                answers = client.fetch_many(
                    [
                        RangeQuery(
                            p.promql, _dt(prime_from), _dt(prime_from + (n - 1) * STEP), STEP
                        )
                        for p in plans
                    ],
                    parallel=2,
                )
            finally:
                client.close()
    recorded: dict[str, _Recorded] = {}
    for p, a in zip(plans, answers, strict=True):
        if isinstance(a, Exception):
            raise RuntimeError(f"{p.signal}: {a}")
        recorded[p.signal] = _Recorded(a, prime_from, n)
    seen: list[Observation] = []
    t = first
    while t <= end:
        plans = state.plan(_dt(t + config.settle_seconds))
        fetched = {
            p.signal: recorded[p.signal].between(p.start.timestamp(), p.end.timestamp())
            for p in plans
        }
        result = state.apply(plans, fetched)  # type: ignore[arg-type]
        at = t + math.ceil(config.settle_seconds / STEP - 1e-9) * STEP + 0.1
        for an in result.anomalies:
            seen.append(
                Observation(
                    an.signal,
                    dict(an.series),
                    max(at, an.start.timestamp() + config.settle_seconds + 0.1),
                    an.start.timestamp(),
                    an.value,
                    an.baseline,
                )
            )
        t += STEP
    startup = [o for o in seen if o.at < lab_up + 240]
    if verbose and startup:
        print(f"startup anomalies: {len(startup)}")
    for r in results:
        r.anomalies = [o for o in seen if r.played_at <= o.at <= r.ends_at + 3.0]
    return results


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("recording", type=Path, help="--json file of a bench run made with --keep")
    p.add_argument("--settle-seconds", type=float, default=SETTLE_SECONDS)
    p.add_argument("--rate-window", default=RATE_WINDOW)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    rec = json.loads(args.recording.read_text())
    base = PassConfig(
        step_seconds=STEP,
        prime_seconds=3600.0,
        rate_window=args.rate_window,
        settle_seconds=args.settle_seconds,
    )
    results = [r for g in rec["groups"] for r in replay_group(g, base, args.verbose)]
    results.sort(key=lambda r: (r.fault == "none", r.name))
    print(table(results))
    for r in results:
        d = r.as_dict()
        if args.verbose or r.fault == "none" or d["false_anomalies"] or not r.detected:
            print(f"{r.name}: anomalies (t from {'play' if r.fault_at is None else 'fault'}):")
            for a in d["anomalies"][:15]:
                labels = ",".join(f"{k}={v}" for k, v in sorted(a["series"].items()))
                v, b = a.get("value"), a.get("baseline")
                vb = (
                    ""
                    if v is None
                    else f" value={v:.4g} baseline=" + ("?" if b is None else f"{b:.4g}")
                )
                print(f"    {a['t_s']:+7.1f}s {a['signal']:26} {labels}{vb}")
    print(json.dumps(summary(results), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
