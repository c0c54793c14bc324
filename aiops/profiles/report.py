"""What the metric profiles turned on, for people: `aiops doctor`, `aiops config show` and the
MCP server show the same account."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiops.profiles.assembly import Assembly

REQUEST_SIGNALS = ("request_rate", "error_ratio", "latency_p99")


def summary(assembly: Assembly) -> dict[str, Any]:
    """The live signals by profile, and the ones that cannot run with what they want."""
    wants: dict[str, list[str]] = defaultdict(list)
    for m in assembly.missing:
        wants[m.signal].append(f"{m.profile} needs {' and '.join(m.wants)}")
    return {
        "discovered": assembly.discovered,
        "profiles_found": assembly.profiles_found,
        "profiles_known": assembly.profiles_known,
        "signals": {
            s.name: {"profiles": s.profiles, "detect": s.detect, "unit": s.unit}
            for s in assembly.signals
        },
        "cannot_run": dict(wants),
    }


def doctor_lines(assembly: Assembly) -> list[tuple[str, str, str]]:
    """(status, what, line) rows: ok, WARN (runs, but blind to something) or FAIL."""
    live = assembly.by_name()
    found = assembly.profiles_found
    rows: list[tuple[str, str, str]] = []
    how = "found in Prometheus" if assembly.discovered else "enabled, not checked (discovery off)"
    rows.append(("ok" if found else "FAIL", "profiles", f"{how}: {', '.join(found) or 'none'}"))
    blind = [name for name in REQUEST_SIGNALS if name not in live]
    if blind:
        rows.append(
            (
                "WARN",
                "requests",
                f"no request metrics for {', '.join(blind)}: errors, latency and traffic are not "
                "watched and playbooks verify without them; install a mesh or OpenTelemetry, or "
                "add a profile (see the README's Metric profiles)",
            )
        )
    by_profile: dict[str, list[str]] = defaultdict(list)
    for s in assembly.signals:
        by_profile[" + ".join(s.profiles)].append(s.name)
    for profiles, names in by_profile.items():
        rows.append(("ok", "signals", f"{', '.join(names)} ({profiles})"))
    for name, why in summary(assembly)["cannot_run"].items():
        rows.append(("WARN", "signals", f"{name} cannot run: {'; '.join(why)}"))
    return rows
