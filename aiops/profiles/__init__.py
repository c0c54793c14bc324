"""Metric profiles: which signals aiops watches and how each kind of exporter computes them.

Pure: models, the YAML loader (`builtin/` holds the shipped vocabulary and profiles) and the
assembly of the live signals from the metric families a Prometheus has. Imports only
aiops.domain; discovery (asking Prometheus) lives in aiops.integrations.discovery.
"""

from functools import cache

from aiops.profiles.assembly import Assembly, Families, Missing, assemble
from aiops.profiles.loader import BUILTIN_DIR, ProfileSet, load_profiles
from aiops.profiles.models import Profile, ProfilePart, SignalSpec
from aiops.profiles.signal import Signal, SignalPart


@cache
def builtin_assembly() -> Assembly:
    """Every signal of the shipped profiles, each with all its parts (no discovery)."""
    shipped = load_profiles()
    return assemble(shipped.vocabulary, shipped.profiles.values())


__all__ = [
    "BUILTIN_DIR",
    "Assembly",
    "Families",
    "Missing",
    "Profile",
    "ProfilePart",
    "ProfileSet",
    "Signal",
    "SignalPart",
    "SignalSpec",
    "assemble",
    "builtin_assembly",
    "load_profiles",
]
