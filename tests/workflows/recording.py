"""Histories of real runs, kept so that tomorrow's workflow code is replayed against them.

Each scenario test calls `replay_and_record` on the workflows it ran: the fresh history must
replay against today's code (no non-determinism), and with AIOPS_RECORD_HISTORIES=1 it is saved
as `histories/<name>.json`, which `test_replay.py` replays from then on. Regenerate them all
(after a deliberate, patched change of a workflow) with

    AIOPS_RECORD_HISTORIES=1 python3 -m uv run pytest tests/workflows -q

and commit the files. Histories recorded by older code (`incident-approved-restart*.json`,
`pre-signing-*.json`) are never regenerated: they prove that workflows already running keep
replaying after an upgrade.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows import ALL_WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"


def replayer() -> Replayer:
    return Replayer(workflows=list(ALL_WORKFLOWS), data_converter=pydantic_data_converter)


async def replay_and_record(handle: WorkflowHandle[Any, Any], name: str) -> WorkflowHistory:
    """Replay the run `handle` points at; save it as `name` when recording."""
    history = await handle.fetch_history()
    await replayer().replay_workflow(history)
    if os.environ.get("AIOPS_RECORD_HISTORIES") == "1":
        (HISTORIES / f"{name}.json").write_text(history.to_json())
    return history


def activity_events(history: WorkflowHistory, activity: str) -> list[HistoryEvent]:
    """The started and completed events of the activity named `activity`, in history order."""
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    found = []
    for event in history.events:
        for attrs in (
            event.activity_task_started_event_attributes,
            event.activity_task_completed_event_attributes,
        ):
            if attrs.scheduled_event_id and scheduled.get(attrs.scheduled_event_id) == activity:
                found.append(event)
    return found
