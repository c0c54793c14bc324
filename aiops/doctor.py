"""`aiops doctor`: one plain line per component, what is reachable and how to fix what is not."""

from __future__ import annotations

import asyncio

from aiops.config import Settings
from aiops.integrations import probes


def run_doctor(settings: Settings) -> int:
    """Print one line per component; exit 1 when a required component is unreachable."""
    results: list[tuple[str, bool, bool, str]] = []  # name, required, ok, line
    ok, line = asyncio.run(probes.probe_temporal(settings.temporal))
    results.append(("temporal", True, ok, line))
    ok, line = probes.probe_prometheus(settings.prometheus)
    results.append(("prometheus", True, ok, line))
    ok, line = probes.probe_kubernetes(settings.kubernetes)
    results.append(("kubernetes", True, ok, line))
    ok, line = probes.probe_llm(settings.llm)
    results.append(("llm", False, ok, line))
    ok, line = probes.probe_slack(settings.slack)
    results.append(("slack", False, ok, line))
    for name, _, ok, line in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name:<11} {line}")
    return 0 if all(ok for _, required, ok, _ in results if required) else 1
