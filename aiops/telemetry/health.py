"""Liveness and readiness of one aiops process, as the probes see them.

Liveness: the process's event loop still turns (a task on it beats every few seconds; a loop
blocked for `stale_after_s` means a restart helps). Readiness: every named check passes, e.g. the
worker is polling its task queue and Temporal answered its last health check. Checks are plain
functions returning None when fine, else the reason; they read state, never block on I/O, so the
probe answers from the server thread while the loop itself is busy.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Check = Callable[[], str | None]

BEAT_INTERVAL_S = 2.0


@dataclass
class Health:
    stale_after_s: float = 60.0
    _checks: dict[str, Check] = field(default_factory=dict)
    _beat: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_check(self, name: str, check: Check) -> None:
        with self._lock:
            self._checks[name] = check

    def beat(self) -> None:
        self._beat = time.monotonic()

    def liveness(self) -> tuple[bool, dict[str, str]]:
        if self._beat is None:
            return True, {"loop": "starting"}
        age = time.monotonic() - self._beat
        if age > self.stale_after_s:
            return False, {"loop": f"event loop blocked for {age:.0f} s"}
        return True, {"loop": "ok"}

    def readiness(self) -> tuple[bool, dict[str, str]]:
        alive, details = self.liveness()
        with self._lock:
            checks = dict(self._checks)
        ready = alive and self._beat is not None
        for name, check in checks.items():
            try:
                problem = check()
            except Exception as exc:  # a broken check is a failed check, never a crash
                problem = f"check failed: {exc}"
            details[name] = problem or "ok"
            ready = ready and problem is None
        return ready, details

    async def keep_beating(self, also: Callable[[], Awaitable[None]] | None = None) -> None:
        """Beat from the loop that does the process's work, until cancelled; `also` runs on
        every beat (e.g. asking Temporal whether it is healthy)."""
        while True:
            self.beat()
            if also is not None:
                await also()
            await asyncio.sleep(BEAT_INTERVAL_S)


class Flag:
    """A readiness check that fails with `reason` until set."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self, reason: str) -> None:
        self.reason = reason
        self._set = False

    def __call__(self) -> str | None:
        return None if self._set else self.reason
