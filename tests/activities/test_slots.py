"""The investigation slots: first come first served, a wait that ends when only what an
investigation needs is left of the activity's time, and no slot lost to a cancelled wait."""

from __future__ import annotations

import asyncio
import time

from aiops.activities.slots import InvestigationSlots


async def test_a_wait_ends_when_only_the_reserve_is_left() -> None:
    slots = InvestigationSlots(1, min_reserve_s=0.5)
    assert slots.reserve(6.0) == 2.0  # before any investigation: a third of the activity
    assert await slots.take(None)
    slots.release(0.2)  # one investigation took 0.2 s: the reserve is now 0.5 s (the minimum)
    assert slots.reserve(6.0) == 0.5
    assert await slots.take(None)  # the only slot is busy from here on
    started = time.monotonic()
    assert not await slots.take(started + 3.0)
    gave_up = time.monotonic() - started
    assert 2.5 - 0.3 < gave_up < 3.0, gave_up
    assert slots.waiting == 0


async def test_slots_go_in_arrival_order_and_a_cancelled_wait_loses_none() -> None:
    slots = InvestigationSlots(1)
    assert await slots.take(None)
    order: list[int] = []

    async def wait(n: int) -> None:
        assert await slots.take(time.monotonic() + 60)
        order.append(n)

    waiters = [asyncio.create_task(wait(n)) for n in range(3)]
    cancelled = asyncio.create_task(slots.take(time.monotonic() + 60))
    await asyncio.sleep(0.1)
    assert slots.waiting == 4
    cancelled.cancel()
    await asyncio.sleep(0.1)
    for _ in range(3):
        slots.release(0.1)
        await asyncio.sleep(0.05)
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]
    slots.release(0.1)  # the last waiter's slot: the one slot is free again, and only one
    assert await slots.take(None)
    assert not await slots.take(time.monotonic() + 0.1)
