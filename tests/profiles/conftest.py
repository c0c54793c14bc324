"""One real Prometheus holding, for every metric profile, a few workloads in chosen states (in a
namespace named after the profile), backfilled with promtool; shared by the tests here."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiops.config import PrometheusSettings
from aiops.integrations.prometheus import Prometheus
from tests.profiles.exporters import REQUEST_EXPORTERS, Calls, Writer, kube_state
from tests.servers import backfilled_prometheus

STEP = 15.0
HISTORY_S = 45 * 60
CRASH_FROM = 20 * 60  # seconds before the end: its pods stop serving ...
RECOVERED = 6 * 60  # ... until this long before the end (a rollback)
GONE = 10 * 60  # `gone` stops being written this long before the end


@dataclass(frozen=True)
class States:
    url: str
    end: float  # the newest sample; the tests evaluate here

    @property
    def during_crash(self) -> float:
        return self.end - (CRASH_FROM + RECOVERED) / 2

    def prometheus(self) -> Prometheus:
        return Prometheus(PrometheusSettings(url=self.url))


def calls(workload: str, ago: float) -> Calls | None:
    """What the workload's callers and servers count `ago` seconds before the end."""
    if workload == "steady":
        return Calls(ok=9.8, failed=0.2)
    if workload == "frontend-web":
        return Calls(ok=9.8, failed=0.2, caller="loadgenerator")
    if workload == "clean":  # never failed: its 5xx series never existed
        return Calls(ok=10.0)
    if workload == "failing":
        return Calls(ok=5.0, failed=5.0)
    if workload == "gone":  # went stale
        return Calls(ok=10.0) if ago > GONE else None
    if workload == "crashing":  # only its callers see the calls no pod answers
        return Calls(refused=10.0) if RECOVERED < ago <= CRASH_FROM else Calls(ok=10.0)
    raise ValueError(workload)


WORKLOADS = ("steady", "frontend-web", "clean", "failing", "gone", "crashing")


def openmetrics(end: float) -> str:
    w = Writer()
    t = end - HISTORY_S
    while t <= end:
        ago = end - t
        for ns, exporter in REQUEST_EXPORTERS.items():
            for workload in WORKLOADS:
                c = calls(workload, ago)
                if c is None:
                    continue
                exporter(w, t, STEP, ns, workload, c)
                crashing = workload == "crashing" and RECOVERED < ago <= CRASH_FROM
                kube_state(w, t, STEP, ns, workload, 0 if crashing else 2, 0.05 * STEP * crashing)
        t += STEP
    return w.text()


@pytest.fixture(scope="session")
def states() -> Iterator[States]:
    end = (time.time() // STEP) * STEP - 30
    with tempfile.TemporaryDirectory(prefix="aiops-states-") as tmp:
        folder = Path(tmp)
        source = folder / "states.om"
        source.write_text(openmetrics(end))
        with backfilled_prometheus(source) as prom:
            yield States(url=prom.url, end=end)
