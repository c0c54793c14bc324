"""The shipped worker (`aiops.worker.run_worker`, what `aiops worker` runs) in its own process,
with one substitution: the investigation answers "cartservice leaks memory".

Without an LLM the investigation agent ranks services from Prometheus history, which the test
Prometheus does not have; the reliability tests need an incident that reaches a remediation.
Everything else is the real composition: settings from `AIOPS_*`, the executor on the kubeconfig,
Prometheus, TemporalHistory, notifications, detection and intake activities, signal handling.

Run as `python -m tests.reliability.worker_main [--start-detection]` from the repository root.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aiops import worker
from aiops.config import load_settings
from tests.incident_fixtures import FixedInvestigator


def main() -> None:
    def fixed(_deps: Any, **_options: Any) -> FixedInvestigator:
        return FixedInvestigator()

    worker.AgentInvestigator = fixed  # type: ignore[assignment,misc]
    detection = "--start-detection" in sys.argv[1:]
    asyncio.run(worker.run_worker(load_settings(), start_detection=detection))


if __name__ == "__main__":
    main()
