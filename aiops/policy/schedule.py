"""Time rules in UTC: weekday/time ranges and a small cron (minute hour day month weekday)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


def parse_hhmm(value: str) -> int:
    """Minutes since midnight for 'HH:MM' ('24:00' is the end of the day)."""
    if not _HHMM.fullmatch(value):
        raise ValueError(f"invalid time {value!r}: write HH:MM in UTC, e.g. 02:00 or 24:00")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def weekly_active(days: list[str], start: str, end: str, now: datetime) -> bool:
    """True if `now` (UTC) falls in [start, end) on one of `days`; end <= start spans midnight."""
    now = now.astimezone(UTC)
    lo, hi = parse_hhmm(start), parse_hhmm(end)
    minute = now.hour * 60 + now.minute
    today = WEEKDAYS[now.weekday()]
    yesterday = WEEKDAYS[(now.weekday() - 1) % 7]
    if lo < hi:
        return today in days and lo <= minute < hi
    # Overnight window, e.g. fri 22:00 -> 06:00: the evening belongs to the day it started on.
    return (today in days and minute >= lo) or (yesterday in days and minute < hi)


_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
_NAMES = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as in cron
    any_day: bool
    any_weekday: bool

    def fires_at(self, t: datetime) -> bool:
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        # Classic cron: when both day fields are restricted, either one matching is enough.
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow


def parse_cron(expr: str) -> Cron:
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(
            f"invalid cron {expr!r}: five fields 'minute hour day month weekday', "
            "e.g. '0 2 * * sat'"
        )
    sets: list[frozenset[int]] = []
    for text, (label, low, high) in zip(parts, _FIELDS, strict=True):
        names = _NAMES if label == "weekday" else _MONTHS if label == "month" else {}
        sets.append(_field(text, label, low, high, names))
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] == "*", parts[4] == "*")


def _field(text: str, label: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    out: set[int] = set()
    for item in text.lower().split(","):
        base, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                lo, hi = low, high
            elif "-" in base:
                a, b = base.split("-", 1)
                lo, hi = _value(a, names), _value(b, names)
            else:
                lo = hi = _value(base, names)
                if step_text:
                    hi = high
        except ValueError as exc:
            raise ValueError(f"invalid cron {label} field {text!r}") from exc
        if step < 1 or not low <= lo <= hi <= high:
            raise ValueError(f"invalid cron {label} field {text!r}: values are {low}-{high}")
        out.update(range(lo, hi + 1, step))
    return frozenset(out)


def _value(text: str, names: dict[str, int]) -> int:
    return names[text] if text in names else int(text)


def cron_active(expr: str, duration_s: float, now: datetime) -> bool:
    """True if the cron fired at some minute s with s <= now < s + duration."""
    cron = parse_cron(expr)
    now = now.astimezone(UTC)
    start = now.replace(second=0, microsecond=0)
    for back in range(int(duration_s // 60) + 1):
        fired = start - timedelta(minutes=back)
        if cron.fires_at(fired) and now < fired + timedelta(seconds=duration_s):
            return True
    return False
