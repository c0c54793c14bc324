"""Guardrails for PromQL asked for by a chat assistant: bounded range, points, series and
evaluation time, and time arguments a person can write ("now", "-30m", ISO 8601)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastmcp.exceptions import ToolError

from aiops.integrations.prometheus import Limits

MAX_RANGE = timedelta(days=7)
MAX_POINTS = 1_000  # per series: plenty for a chart, little for a context window
MAX_SERIES = 50
MAX_QUERY_CHARS = 4_000
QUERY_TIMEOUT_S = 10.0  # Prometheus' evaluation limit and the read timeout of one tool query
# An answer is read only this far: 50 series of 1,000 points fit in about 2 MiB, while a careless
# selector over 50,000 series (61 MB) would cost seconds of parsing and a context window.
MAX_ANSWER_BYTES = 4 * 1024 * 1024

_REL = re.compile(r"^(?:now)?\s*-\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_DUR = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
TIME_HELP = (
    "write 'now', a relative time like '-30m' or '-2h', or ISO 8601 like '2026-11-24T12:00:00Z'"
)


def limits() -> Limits:
    """The bounds of every query a tool sends (read at call time, so tests can lower them)."""
    return Limits(
        series=MAX_SERIES + 1,  # one more than shown, to say that some were left out
        max_bytes=MAX_ANSWER_BYTES,
        timeout_s=QUERY_TIMEOUT_S,
    )


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    step_s: float


def parse_time(value: str, name: str, now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    text = value.strip().lower()
    if text in ("", "now"):
        return now
    m = _REL.match(text)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ToolError(f"{name} {value[:60]!r} is not a time; {TIME_HELP}") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def parse_duration(value: str, name: str) -> float:
    m = _DUR.match(value.strip().lower())
    if not m:
        raise ToolError(f"{name} {value[:60]!r} is not a duration; write e.g. '30s', '1m', '1h'")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def check_promql(promql: str) -> str:
    text = promql.strip()
    if not text:
        raise ToolError(
            "promql is empty; give a PromQL expression such as "
            "'up' or 'sum by (job) (rate(http_requests_total[5m]))'"
        )
    if len(text) > MAX_QUERY_CHARS:
        raise ToolError(
            f"promql is {len(text)} characters long; the limit is "
            f"{MAX_QUERY_CHARS}: split the question into smaller queries"
        )
    return text


def window(start: str, end: str, step: str | None, now: datetime | None = None) -> Window:
    """A range [start, end] with a step that keeps each series under MAX_POINTS."""
    now = now or datetime.now(UTC)
    t0, t1 = parse_time(start, "start", now), parse_time(end, "end", now)
    if t1 <= t0:
        raise ToolError(f"start ({t0.isoformat()}) must be before end ({t1.isoformat()})")
    span = t1 - t0
    if span > MAX_RANGE:
        raise ToolError(
            f"the range is {_human(span.total_seconds())}; the limit is "
            f"{_human(MAX_RANGE.total_seconds())}: narrow start/end"
        )
    if t0 > now + timedelta(minutes=5):
        raise ToolError(f"start {t0.isoformat()} is in the future; Prometheus has no data there")
    if step is None:
        step_s = max(1.0, math.ceil(span.total_seconds() / (MAX_POINTS - 1)))
    else:
        step_s = parse_duration(step, "step")
        if step_s < 1:
            raise ToolError("step must be at least 1s")
        points = span.total_seconds() / step_s + 1
        if points > MAX_POINTS:
            need = math.ceil(span.total_seconds() / (MAX_POINTS - 1))
            raise ToolError(
                f"step {step} gives {points:.0f} points per series; the limit is "
                f"{MAX_POINTS}: use step '{need}s' or more, or a shorter range"
            )
    return Window(t0, t1, step_s)


def _human(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 60:.0f}m"
