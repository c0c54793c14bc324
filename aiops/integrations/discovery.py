"""Profile discovery: which metric families the cluster's Prometheus has, so that only the
signals they can feed are turned on.

Asked at start and then every `profiles.refresh_s`, bounded twice: only the families the profiles
name (one label-values call on `__name__` with a matcher listing them), and only series with
samples within `profiles.lookback_s` (a family that stopped an hour ago is not live). Families
whose signals need particular labels (OpenTelemetry's promoted resource attributes, servicegraph
dimensions) get one label-names call each. When Prometheus cannot be asked, the last answer
stands; before any answer, every part of every profile (a query over absent families is merely
empty), and the error is kept for `aiops doctor`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiops.config import ConfigError, ProfileSettings
from aiops.domain.yamlsource import LoadError
from aiops.integrations.prometheus import Prometheus, PrometheusError
from aiops.profiles import Assembly, Profile, ProfileSet, assemble, load_profiles
from aiops.profiles.models import family_of
from aiops.profiles.signal import parse_need

RETRY_S = 30.0  # after a failed discovery, ask again this soon (not a whole refresh later)
ALWAYS_ON = "base"


def load_profile_set(settings: ProfileSettings) -> tuple[ProfileSet, list[Profile]]:
    """The loaded profiles and the enabled ones, or a ConfigError naming what to fix."""
    try:
        profiles = load_profiles(settings.dirs)
    except LoadError as exc:
        raise ConfigError(
            f"invalid metric profiles (setting profiles.dirs, AIOPS_PROFILES__DIRS):\n{exc}"
        ) from exc
    unknown = sorted(set(settings.enabled) - set(profiles.profiles))
    if unknown:
        raise ConfigError(
            f"invalid setting profiles.enabled: unknown profiles {unknown}; known: "
            f"{', '.join(sorted(profiles.profiles))}; set AIOPS_PROFILES__ENABLED or fix the file"
        )
    wanted = set(settings.enabled) | {ALWAYS_ON} if settings.enabled else set(profiles.profiles)
    return profiles, [p for name, p in profiles.profiles.items() if name in wanted]


def wanted_families(profiles: list[Profile]) -> dict[str, set[str]]:
    """family -> the labels some signal needs it to carry."""
    out: dict[str, set[str]] = {}
    for p in profiles:
        needs = [n for parts in p.signals.values() for part in parts for n in part.flat_needs()]
        for need in needs + (p.edges.needs if p.edges is not None else []):
            family, labels = parse_need(need)
            out.setdefault(family, set()).update(labels)
    return out


def discover_families(
    prometheus: Prometheus, wanted: dict[str, set[str]], lookback_s: float, now: datetime
) -> dict[str, frozenset[str]]:
    """The wanted families present in Prometheus, each with its label names (when asked)."""
    start = now - timedelta(seconds=lookback_s)
    names = prometheus.metric_names(_selector(sorted(wanted)), start, now)
    present = {family_of(n) for n in names} | set(names)
    found: dict[str, frozenset[str]] = {}
    for family in sorted(set(wanted) & present):
        labels: frozenset[str] = frozenset()
        if wanted[family]:
            labels = frozenset(prometheus.label_names(_selector([family]), start, now))
        found[family] = labels
    return found


def _selector(families: list[str]) -> str:
    alternatives = "|".join(re.escape(f) for f in families)
    return f'{{__name__=~"({alternatives})(_bucket|_count|_sum)?"}}'


class ProfileDiscovery:
    """The live signal assembly, refreshed from Prometheus every `refresh_s` (thread-safe)."""

    def __init__(
        self,
        settings: ProfileSettings,
        prometheus: Prometheus | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.prometheus = prometheus
        self.profile_set, self.profiles = load_profile_set(settings)
        self._clock = clock
        self._lock = threading.Lock()
        self._assembly = assemble(self.profile_set.vocabulary, self.profiles)
        self._next = 0.0  # clock time of the next ask
        self.checked_at: datetime | None = None
        self.last_error: str | None = None
        self.seconds = 0.0

    def current(self) -> Assembly:
        with self._lock:
            due = self._clock() >= self._next
            if self.settings.discovery and self.prometheus is not None and due:
                self._refresh()
            return self._assembly

    def refresh(self) -> Assembly:
        with self._lock:
            if self.prometheus is not None:
                self._refresh()
            return self._assembly

    def _refresh(self) -> None:
        assert self.prometheus is not None
        started = time.perf_counter()
        now = datetime.now(UTC)
        try:
            families = discover_families(
                self.prometheus,
                wanted_families(self.profiles),
                self.settings.lookback_s,
                now,
            )
        except PrometheusError as exc:
            self.last_error = str(exc)
            self._next = self._clock() + min(RETRY_S, self.settings.refresh_s)
            return
        self._assembly = assemble(self.profile_set.vocabulary, self.profiles, families)
        self.last_error = None
        self.checked_at = now
        self.seconds = time.perf_counter() - started
        self._next = self._clock() + self.settings.refresh_s
