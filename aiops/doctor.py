"""`aiops doctor`: one plain line per component, what is reachable and how to fix what is not;
then which metric profiles Prometheus feeds, the signals live and the ones that cannot run."""

from __future__ import annotations

import asyncio

from aiops.config import ConfigError, Settings
from aiops.integrations import probes


def run_doctor(settings: Settings) -> int:
    """Print one line per component; exit 1 when a required component is unreachable (or
    Prometheus has no metric family any profile reads)."""
    results: list[tuple[str, bool, bool, str]] = []  # name, required, ok, line
    ok, line = asyncio.run(probes.probe_temporal(settings.temporal))
    results.append(("temporal", True, ok, line))
    ok, line = probes.probe_prometheus(settings.prometheus)
    results.append(("prometheus", True, ok, line))
    prometheus_ok = ok
    ok, line = probes.probe_kubernetes(settings.kubernetes)
    results.append(("kubernetes", True, ok, line))
    ok, line = probes.probe_llm(settings.llm)
    results.append(("llm", False, ok, line))
    ok, line = probes.probe_slack(settings.slack)
    results.append(("slack", False, ok, line))
    for name, _, ok, line in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name:<11} {line}")
    profiles_ok = _profiles(settings) if prometheus_ok else True
    return 0 if profiles_ok and all(ok for _, required, ok, _ in results if required) else 1


def _profiles(settings: Settings) -> bool:
    """The profiles' lines; False when none of them finds anything to read."""
    from aiops.integrations.discovery import ProfileDiscovery
    from aiops.integrations.prometheus import Prometheus
    from aiops.profiles.report import doctor_lines

    prometheus = Prometheus(settings.prometheus.model_copy(update={"timeout_s": 5.0}))
    try:
        discovery = ProfileDiscovery(settings.profiles, prometheus)
    except ConfigError as exc:
        print(f"FAIL {'profiles':<11} {exc}")
        return False
    assembly = discovery.current()
    if discovery.last_error:
        print(f"FAIL {'profiles':<11} could not ask Prometheus: {discovery.last_error}")
        return False
    rows = doctor_lines(assembly)
    for status, what, line in rows:
        print(f"{status:<4} {what:<11} {line}")
    return all(status != "FAIL" for status, _, _ in rows)
