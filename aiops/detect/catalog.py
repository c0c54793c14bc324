"""The signal catalog: the signals the detection pass can watch, by name.

The signals themselves come from the metric profiles (aiops/profiles: what each signal means in
`builtin/signals.yaml`, how each kind of exporter computes it in one file per profile). Without
discovery the built-in catalog holds every part of every shipped profile (a query over families a
cluster lacks is merely empty); the daemon narrows it to what its Prometheus has
(aiops.integrations.discovery). A user's own signals (settings `detection.signals`) extend the
catalog, or replace a built-in signal of the same name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aiops.profiles import Signal, builtin_assembly

#: Every signal of the shipped profiles, each with all its parts.
BUILTIN_SIGNALS: tuple[Signal, ...] = tuple(builtin_assembly().signals)


class SignalCatalog:
    """Signals (built-in, or what discovery found live) plus user-defined ones, by name."""

    def __init__(self, signals: Iterable[Signal] = BUILTIN_SIGNALS) -> None:
        self._signals: dict[str, Signal] = {}
        for s in signals:
            self.add(s)

    def add(self, signal: Signal | Mapping[str, Any], *, replace: bool = False) -> Signal:
        sig = signal if isinstance(signal, Signal) else Signal.model_validate(dict(signal))
        if sig.name in self._signals and not replace:
            raise ValueError(
                f"signal {sig.name!r} already exists; pick another name or set "
                "replace=True to override the built-in one"
            )
        self._signals[sig.name] = sig
        return sig

    def __getitem__(self, name: str) -> Signal:
        try:
            return self._signals[name]
        except KeyError:
            raise KeyError(f"unknown signal {name!r}; known: {', '.join(self.names())}") from None

    def get(self, name: str) -> Signal | None:
        return self._signals.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._signals

    def __iter__(self) -> Iterator[Signal]:
        return iter(self._signals.values())

    def __len__(self) -> int:
        return len(self._signals)

    def names(self) -> list[str]:
        return list(self._signals)


def build_catalog(
    user_signals: Iterable[Signal | Mapping[str, Any]] = (),
    *,
    replace: bool = True,
    base: Iterable[Signal] | None = None,
) -> SignalCatalog:
    """`base` (default: the built-in signals) extended (or, with replace=True, overridden) by
    user signals, which usually come from settings (mappings with the Signal fields: name,
    query, entity_label, direction, unit, ...)."""
    cat = SignalCatalog(BUILTIN_SIGNALS if base is None else base)
    for s in user_signals:
        cat.add(s, replace=replace)
    return cat


__all__ = ["BUILTIN_SIGNALS", "Signal", "SignalCatalog", "build_catalog"]
