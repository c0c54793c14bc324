"""The worker's investigation slots: at most `parallel` investigations at once, first come first
served, and no wait for a slot that would leave the investigation too little of its activity's
time.

Investigations are mostly CPU (ranking a metrics matrix) and share the worker process with the
workflow tasks, so a storm of incidents queues here instead of starving the event loop. A wait
must still end in time for the incident to be reported: it gives up when only what an
investigation needs is left before the activity's limit, that is twice the slowest of the last
20 investigations (at least `min_reserve_s`, at most a third of the activity's time; a third
until one has run). The reserve is recomputed when a wait would end, so a storm that starts
before any investigation has finished is not cut short by the first, cautious guess (the guess
is the largest reserve there can be, so a wait never ends later than the reserve it knew).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class InvestigationSlots:
    def __init__(self, parallel: int, *, min_reserve_s: float = 3.0) -> None:
        self.parallel = parallel
        self.min_reserve_s = min_reserve_s
        self.waiting = 0
        self._free = asyncio.Semaphore(parallel)
        self._recent: deque[float] = deque(maxlen=20)

    def reserve(self, limit_s: float) -> float:
        """The time an investigation needs, in an activity of `limit_s`."""
        if not self._recent:
            return limit_s / 3
        return min(max(2 * max(self._recent), self.min_reserve_s), limit_s / 3)

    async def take(self, deadline: float | None) -> bool:
        """Wait for a slot (True), or until only the reserve is left before `deadline`, a
        `time.monotonic()` instant (False: no slot was taken)."""
        self.waiting += 1
        acquire: asyncio.Future[bool] = asyncio.ensure_future(self._free.acquire())
        try:
            if deadline is None:
                await acquire
                return True
            limit_s = deadline - time.monotonic()
            while True:
                patience = deadline - time.monotonic() - self.reserve(limit_s)
                if patience <= 0:
                    return await self._give_up(acquire)
                done, _ = await asyncio.wait({acquire}, timeout=patience)
                if done:
                    return True
        except BaseException:  # cancelled while waiting: the slot must not leak
            await self._give_up(acquire, release=True)
            raise
        finally:
            self.waiting -= 1

    async def _give_up(self, acquire: asyncio.Future[bool], *, release: bool = False) -> bool:
        acquire.cancel()
        try:
            await acquire
        except asyncio.CancelledError:
            return False
        if release:
            self._free.release()
            return False
        return True  # the slot came just as the wait ended: use it

    def release(self, took_s: float) -> None:
        """Give the slot back after an investigation that took `took_s`."""
        self._recent.append(took_s)
        self._free.release()
