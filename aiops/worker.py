"""The composition root: builds the activities with their dependencies and runs the worker."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from aiops.activities.incident import IncidentActivities
from aiops.config import Settings
from aiops.integrations.temporal import connect
from aiops.logs import get_logger
from workflows import ALL_WORKFLOWS

log = get_logger(__name__)


def build_worker(
    client: Client, task_queue: str, activities: Sequence[Callable[..., Any]] | None = None
) -> Worker:
    acts = list(activities) if activities is not None else IncidentActivities().all()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(ALL_WORKFLOWS),
        activities=acts,  # type: ignore[arg-type]
        activity_executor=ThreadPoolExecutor(max_workers=16),
    )


async def run_worker(settings: Settings) -> None:
    client = await connect(settings.temporal)
    worker = build_worker(client, settings.temporal.task_queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started", address=settings.temporal.address,
             task_queue=settings.temporal.task_queue)
    async with worker:
        await stop.wait()
    log.info("worker stopped")
