"""Profiles + the metric families a Prometheus has -> the signals that can run, and why others
cannot.

Pure: the families come from discovery (aiops.integrations.discovery) or are left out, in which
case every part of every profile is taken (a query over families a cluster lacks is merely
empty). Parts are ordered by profile (`order`, then name), so a `first` signal takes the
series of the profile that comes first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiops.profiles.models import EdgeSource, Profile, ProfilePart, SignalSpec
from aiops.profiles.signal import Signal, SignalPart, parse_need

#: family -> label names seen on its series (an empty set: labels not asked for)
Families = Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class Missing:
    """A signal (or a profile's part of it) that cannot run, and for want of what."""

    signal: str
    profile: str
    wants: list[str]  # one line per unmet need: "response_total" or "a or b"


@dataclass(frozen=True)
class Assembly:
    """The effective signals and the account of how they came to be."""

    signals: list[Signal]
    profiles_found: list[str]  # profiles with at least one live part
    profiles_known: list[str]
    missing: list[Missing] = field(default_factory=list)  # signals with no live part at all
    discovered: bool = False  # built from what Prometheus has (else: every part, unchecked)
    families: dict[str, list[str]] = field(default_factory=dict)  # family -> its labels
    edges: list[EdgeSource] = field(default_factory=list)  # service graphs live, profile order

    def by_name(self) -> dict[str, Signal]:
        return {s.name: s for s in self.signals}

    def signal(self, name: str) -> Signal | None:
        return self.by_name().get(name)

    def why_not(self, name: str) -> str:
        """Why a signal has no live part, in words: which families it wants, per profile."""
        wants = [m for m in self.missing if m.signal == name]
        if not wants:
            return f"no profile computes signal {name!r}"
        return "; ".join(f"{m.profile} needs {' and '.join(m.wants)}" for m in wants)


def need_met(need: str, families: Families) -> bool:
    family, labels = parse_need(need)
    if family not in families:
        return False
    return set(labels) <= families[family]


def unmet(part: ProfilePart, families: Families) -> list[str]:
    out = []
    for alternatives in part.need_groups():
        if not any(need_met(n, families) for n in alternatives):
            out.append(" or ".join(alternatives))
    return out


def ordered(profiles: Iterable[Profile]) -> list[Profile]:
    return sorted(profiles, key=lambda p: (p.order, p.profile))


def assemble(
    vocabulary: Mapping[str, SignalSpec],
    profiles: Iterable[Profile],
    families: Families | None = None,
) -> Assembly:
    """The signals the profiles can feed (all of them when `families` is None)."""
    books = ordered(profiles)
    specs: dict[str, SignalSpec] = dict(vocabulary)
    for p in books:
        for name, spec in p.defines.items():
            specs.setdefault(name, spec)
    signals: list[Signal] = []
    missing: list[Missing] = []
    found: set[str] = set()
    for name, spec in specs.items():
        parts: list[SignalPart] = []
        wants: list[Missing] = []
        for p in books:
            for part in p.signals.get(name, []):
                gaps = unmet(part, families) if families is not None else []
                if gaps:
                    wants.append(Missing(name, p.profile, gaps))
                    continue
                parts.append(_part(p, part, _guard(p, spec, families)))
                found.add(p.profile)
        if parts:
            signals.append(Signal(name=name, parts=tuple(parts), **spec.signal_fields()))
        elif wants:
            missing.extend(_merge(wants))
    edges = [
        p.edges
        for p in books
        if p.edges is not None
        and (families is None or all(need_met(n, families) for n in p.edges.needs))
    ]
    return Assembly(
        signals=signals,
        edges=edges,
        profiles_found=[p.profile for p in books if p.profile in found],
        profiles_known=[p.profile for p in books],
        missing=missing,
        discovered=families is not None,
        families={k: sorted(v) for k, v in sorted((families or {}).items())},
    )


def _part(profile: Profile, part: ProfilePart, guard: SignalPart | None) -> SignalPart:
    return SignalPart(
        profile=profile.profile,
        query=part.query,
        labels=dict(part.labels),
        needs=part.need_groups(),
        guard=guard,
        shared=part.shared,
    )


def _guard(profile: Profile, spec: SignalSpec, families: Families | None) -> SignalPart | None:
    """The profile's own live request rate, for a signal valid only over enough requests."""
    if not spec.min_requests:
        return None
    for part in profile.signals.get("request_rate", []):
        if families is None or not unmet(part, families):
            return _part(profile, part, None)
    return None


def _merge(wants: list[Missing]) -> list[Missing]:
    """One line per profile (a profile with several parts lists each part's gaps once)."""
    by: dict[str, list[str]] = {}
    for m in wants:
        seen = by.setdefault(m.profile, [])
        seen.extend(w for w in m.wants if w not in seen)
    return [Missing(wants[0].signal, profile, w) for profile, w in by.items()]
