"""Kubernetes resource quantities ("250m", "128Mi", "2") as floats.

A small parser of our own: importing the kubernetes client just for `parse_quantity` would cost the
simulation a second of start-up.
"""

from __future__ import annotations

import re

_SUFFIX = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: str | int | float) -> float:
    """'500m' -> 0.5, '128Mi' -> 134217728.0; raises ValueError naming the bad value."""
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(value.strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(
            f"not a Kubernetes quantity: {value!r} (expected e.g. '250m', '2', '128Mi', '1Gi')"
        )
    return float(match.group(1)) * _SUFFIX[match.group(2)]
