"""The shipped worker (`aiops.worker.run_worker`, what `aiops worker` runs) in its own process,
with one substitution: the investigation answers "cartservice leaks memory", or, with
`--labelled`, reads the root cause off the incident's anomaly (the `workload` or `node` label,
and a `fault` label; by default "cartservice leaks memory").

Without an LLM the investigation agent ranks services from Prometheus history, which the test
Prometheus does not have; the reliability tests need incidents that reach a remediation.
Everything else is the real composition: settings from `AIOPS_*`, the executor on the kubeconfig,
Prometheus, TemporalHistory, notifications, detection and intake activities, signal handling.

Run as `python -m tests.reliability.worker_main [--labelled] [--start-detection]` from the
repository root.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aiops import worker
from aiops.config import load_settings
from aiops.domain import FaultType, Incident, RcaReport
from tests.incident_fixtures import FixedInvestigator


class LabelledInvestigator:
    """The root cause the incident's first anomaly is labelled with."""

    async def investigate(self, incident: Incident) -> RcaReport:
        labels = incident.anomalies[0].series if incident.anomalies else {}
        fault = FaultType(labels.get("fault", FaultType.MEMORY.value))
        if "node" in labels:
            return await FixedInvestigator(fault, labels["node"], kind="Node").investigate(incident)
        target = labels.get("workload", "cartservice")
        return await FixedInvestigator(fault, target).investigate(incident)


def main() -> None:
    args = sys.argv[1:]

    def investigator(_deps: Any, **_options: Any) -> FixedInvestigator | LabelledInvestigator:
        return LabelledInvestigator() if "--labelled" in args else FixedInvestigator()

    worker.AgentInvestigator = investigator  # type: ignore[assignment,misc]
    asyncio.run(worker.run_worker(load_settings(), start_detection="--start-detection" in args))


if __name__ == "__main__":
    main()
