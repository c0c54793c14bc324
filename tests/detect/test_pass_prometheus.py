"""The detection pass against a real Prometheus holding backfilled history (promtool) and
scraping a live Istio-like target every second."""

from __future__ import annotations

import contextlib
import http.server
import math
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from aiops.activities.detection import (
    DetectAnomaliesInput,
    DetectAnomaliesResult,
    DetectionActivities,
    DetectionCheckpoint,
)
from aiops.config import DetectionSettings, PrometheusSettings, Settings
from aiops.domain.models import Direction
from tests.servers import PrometheusProcess, wait_until

WORKLOADS = ["cart", "checkout", "frontend", "payments", "catalog"]
HISTORY_S = 400
RATE_WINDOW_S = 5
LEAD_S = 8  # seconds of history past the start, covering Prometheus' start-up
FAULT_FACTOR = 15.0  # the faulty workload's 5xx rate is multiplied by this


class IstioTarget:
    """/metrics with istio_requests_total for a few workloads, as exact functions of time.

    Rates follow slow waves (so history shows the whole normal range); counters are their exact
    integrals, so scrape timing adds no noise. Faults, NaN, missing series and counter resets
    are switched on per workload by the test.
    """

    def __init__(self) -> None:
        self.fault_at: dict[str, float] = {}
        self.nan: set[str] = set()
        self.hidden: set[str] = set()
        self.reset_pending: set[str] = set()
        self.offset: dict[tuple[str, str], float] = {}
        self.last_scrape: float | None = None
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = target.exposition(time.time()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def labels(w: str, code: str) -> str:
        return (
            f'reporter="destination",destination_workload="{w}",'
            f'destination_workload_namespace="shop",response_code="{code}"'
        )

    def counters(self, w: str, t: float) -> tuple[float, float]:
        """(2xx, 5xx) counters: 50 req/s +-20% of which 2% +-30% fail, unless faulted."""
        ph = WORKLOADS.index(w)
        total = 50 * t - 50 * 0.2 * 60 / (2 * math.pi) * math.cos(2 * math.pi * t / 60 + ph)
        err = t - 0.3 * 40 / (2 * math.pi) * math.cos(2 * math.pi * t / 40 + ph)
        extra = 0.0
        fault = self.fault_at.get(w)
        if fault is not None and t > fault:
            # Successes turn into errors: the request rate stays, the error ratio jumps.
            e0 = fault - 0.3 * 40 / (2 * math.pi) * math.cos(2 * math.pi * fault / 40 + ph)
            extra = (FAULT_FACTOR - 1) * (err - e0)
        return total - err - extra, err + extra

    def exposition(self, now: float) -> str:
        lines = []
        for w in WORKLOADS:
            if w in self.hidden:
                continue
            ok, err = self.counters(w, now)
            if w in self.reset_pending and self.last_scrape is not None:
                # A restarted pod: counters begin again from what it served since the last scrape.
                prev = self.counters(w, self.last_scrape)
                self.offset[(w, "200")], self.offset[(w, "500")] = prev
                self.reset_pending.discard(w)
            for code, v in (("200", ok), ("500", err)):
                value = "NaN" if w in self.nan else repr(v - self.offset.get((w, code), 0.0))
                lines.append(f"istio_requests_total{{{self.labels(w, code)}}} {value}\n")
        self.last_scrape = now
        return "".join(lines)

    def openmetrics_history(self, start: int, end: int) -> str:
        inst = f'job="test",instance="{self.address}"'
        lines = ["# TYPE istio_requests counter\n"]
        for w in WORKLOADS:
            for i, code in enumerate(("200", "500")):
                for t in range(start, end):
                    v = self.counters(w, float(t))[i]
                    lines.append(f"istio_requests_total{{{inst},{self.labels(w, code)}}} {v} {t}\n")
        lines.append("# EOF\n")
        return "".join(lines)


@contextlib.contextmanager
def prometheus_with_history(target: IstioTarget, history_s: int) -> Iterator[str]:
    """Prometheus whose TSDB holds `history_s` seconds of backfilled samples of `target`."""
    with istio_prometheus(target, history_s) as prom:
        yield prom.url


@contextlib.contextmanager
def istio_prometheus(target: IstioTarget, history_s: int) -> Iterator[PrometheusProcess]:
    """Prometheus whose TSDB holds `history_s` seconds of backfilled samples of `target`, and
    that scrapes it every second from then on (stop and start it for an outage).

    The history runs a few seconds into the future: Prometheus refuses live samples older than
    its newest block, so the live scrapes take over exactly where the history ends, with no gap
    (a gap would make every rate() read low for a window and the tests wait it out).
    """
    promtool = shutil.which("promtool")
    if promtool is None or shutil.which("prometheus") is None:
        pytest.fail("prometheus and promtool are not installed (apt-get install prometheus)")
    with tempfile.TemporaryDirectory(prefix="aiops-prom-") as tmp:
        prom = PrometheusProcess(Path(tmp))
        end = int(time.time()) + LEAD_S
        om = Path(tmp) / "history.om"
        om.write_text(target.openmetrics_history(end - history_s, end))
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(prom.data_dir)],
            check=True,
            capture_output=True,
        )
        (prom.folder / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs: [{{job_name: test, static_configs: [{{targets: ['{target.address}']"
            "}]}]\n"
        )
        try:
            prom.start()
            wait_until(lambda: _has(prom.url, 'up{job="test"} == 1'), 30, "the first scrape")
            # Scraping began after the history ended: more than a scrape missing is a gap
            # that every rate() window must get past first.
            late = time.time() - end
            time.sleep(max(0.0, -late) + 2 + (RATE_WINDOW_S + 2 if late > 1.5 else 0))
            yield prom
        finally:
            prom.stop()


def _has(url: str, query: str) -> bool:
    try:
        r = httpx.get(url + "/api/v1/query", params={"query": query}, timeout=2)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and bool(r.json()["data"]["result"])


@pytest.fixture(scope="module")
def istio() -> Iterator[tuple[IstioTarget, str]]:
    target = IstioTarget()
    try:
        with prometheus_with_history(target, HISTORY_S) as url:
            yield target, url
    finally:
        target.close()


def activities(url: str, state_dir: Path) -> DetectionActivities:
    return DetectionActivities(
        Settings(
            state_dir=state_dir,
            prometheus=PrometheusSettings(url=url, timeout_s=5),
            detection=DetectionSettings(interval_s=1, prime_s=300, rate_window=f"{RATE_WINDOW_S}s"),
        )
    )


class Loop:
    """Passes one second apart, each carrying the previous checkpoint, as a workflow would."""

    def __init__(self, acts: DetectionActivities) -> None:
        self.acts = acts
        self.checkpoint: DetectionCheckpoint | None = None
        self.results: list[DetectAnomaliesResult] = []

    def step(self) -> DetectAnomaliesResult:
        if self.results:
            time.sleep(max(0.0, 1.0 - (time.time() % 1.0)) + 0.05)  # into the next second
        out = self.acts.run_pass(DetectAnomaliesInput(stream="t", checkpoint=self.checkpoint))
        self.checkpoint = out.checkpoint
        self.results.append(out)
        return out

    def anomalies(self) -> list[tuple[str, str, Direction]]:
        return [
            (a.signal, a.series["workload"], a.direction) for r in self.results for a in r.anomalies
        ]


def test_cold_start_primes_from_history_and_ignores_nan_gaps_and_resets(
    istio: tuple[IstioTarget, str], tmp_path: Path
) -> None:
    target, url = istio
    loop = Loop(activities(url, tmp_path))
    first = loop.step()
    assert first.cold_start
    by_name = {s.signal: s for s in first.signals}
    assert by_name["request_rate"].status == by_name["error_ratio"].status == "ok"
    assert by_name["request_rate"].series == len(WORKLOADS)
    assert by_name["error_ratio"].steps >= 300  # primed from the backfilled history
    assert first.checkpoint.series >= 2 * len(WORKLOADS)
    assert first.anomalies == []  # (an alarm would also mute its series for a while)

    target.nan.add("cart")  # the exporter answers NaN
    target.hidden.add("frontend")  # the series vanishes (a gap, then staleness)
    target.reset_pending.add("payments")  # the pod restarts: counters begin again
    for _ in range(4):
        loop.step()
    target.nan.clear()
    target.hidden.clear()
    for _ in range(6):
        out = loop.step()
        assert not out.cold_start
        assert all(s.status != "failed" for s in out.signals)
    assert loop.anomalies() == []


def test_an_error_burst_in_one_workload_is_exactly_one_anomaly(
    istio: tuple[IstioTarget, str], tmp_path: Path
) -> None:
    target, url = istio
    loop = Loop(activities(url, tmp_path))
    for _ in range(2):
        loop.step()
    assert loop.anomalies() == []
    target.fault_at["checkout"] = time.time()
    fault = datetime.now(UTC)
    # Detected within a few scrapes (rate window 5 s, passes 2 s behind the clock)...
    for _ in range(8):
        if loop.step().anomalies:
            break
    assert loop.anomalies() == [("error_ratio", "checkout", Direction.UP)]
    # ...and the ongoing episode raises nothing more.
    for _ in range(4):
        loop.step()
    assert loop.anomalies() == [("error_ratio", "checkout", Direction.UP)]
    [a] = [a for r in loop.results for a in r.anomalies]
    assert 0 <= (a.start - fault).total_seconds() <= 8
    assert a.value is not None and a.baseline is not None
    healthy_max = 1.3 / 40  # the most 5xx a healthy workload shows: 1.3 of 40 req/s
    # Detection now fires while the 5 s rate window is still filling with the burst, so the
    # value at detection can sit just under a healthy peak; it is above its own baseline.
    assert a.baseline < healthy_max
    assert a.value > a.baseline
    assert "istio_requests_total" in a.query and "[5s]" in a.query
    del target.fault_at["checkout"]
