"""How long the running activity may still take, so that the calls it makes fit its time limit.

An outside call that outlives its activity is worse than one that fails: Temporal has already
scheduled the retry, the late thread still holds a worker slot, and whatever it finally does is
done by an attempt nobody waits for. So every activity that calls out passes this deadline down.
"""

from __future__ import annotations

import time

from temporalio import activity

# Kept free at the end of an activity for its reply to reach the server.
REPLY_MARGIN_S = 2.0


def activity_deadline(margin_s: float = REPLY_MARGIN_S) -> float | None:
    """The `time.monotonic()` instant by which the running activity must be done: its
    start-to-close limit from now (it is called as the activity starts), less `margin_s`. None
    outside an activity or when the activity has no limit."""
    try:
        info = activity.info()
    except RuntimeError:
        return None
    limit = info.start_to_close_timeout
    if limit is None:
        return None
    return time.monotonic() + limit.total_seconds() - margin_s


def call_timeout(default_s: float, margin_s: float = REPLY_MARGIN_S) -> float:
    """A timeout for one outside call of the running activity: `default_s`, cut so that the call
    ends before the activity's limit and, for a heartbeating activity, well within one heartbeat
    interval (the activity heartbeats between calls, not during them)."""
    try:
        info = activity.info()
    except RuntimeError:
        return default_s
    limits = [default_s]
    if info.start_to_close_timeout is not None:
        limits.append(info.start_to_close_timeout.total_seconds() - margin_s)
    if info.heartbeat_timeout is not None:
        limits.append(info.heartbeat_timeout.total_seconds() / 2)
    return max(min(limits), 0.1)
