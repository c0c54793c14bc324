"""Human-readable before → after diffs of the fields an action touches, for approval requests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NONE = "(none)"


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.field}: {self.before} → {self.after}"


def show(value: Any) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def flatten(value: Any, prefix: str) -> dict[str, Any]:
    """Leaves of a JSON value by path; lists of named objects are keyed by their name, as people
    read them (containers[server].image)."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for key, sub in value.items():
            if "." in str(key) or "/" in str(key):
                path = f"{prefix}[{key}]"  # annotation and label keys read better bracketed
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(sub, path))
    elif (
        isinstance(value, list)
        and value
        and all(isinstance(v, Mapping) and "name" in v for v in value)
    ):
        for item in value:
            out.update(flatten(item, f"{prefix}[{item['name']}]"))
    elif value not in (None, {}, []):
        out[prefix] = value
    return out


def diff(before: Any, after: Any, prefix: str) -> list[FieldChange]:
    a, b = flatten(before, prefix), flatten(after, prefix)
    return [
        FieldChange(path, show(a.get(path)), show(b.get(path)))
        for path in sorted(set(a) | set(b))
        if a.get(path) != b.get(path)
    ]


def render(header: str, changes: Iterable[FieldChange], notes: Iterable[str] = ()) -> str:
    lines = [header]
    lines += [f"  {change}" for change in changes]
    lines += [f"  {note}" for note in notes]
    return "\n".join(lines)
