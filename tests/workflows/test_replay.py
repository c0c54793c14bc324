"""Every recorded history replays against today's workflow code, and the recordings cover every
workflow and every path an incident or the detection loop can take (see recording.py for how
they are made)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from aiops.activities.contracts import EXECUTE_STEP
from aiops.activities.intake_contracts import OPEN_INCIDENTS
from aiops.activities.kill_switch import CHECK_KILL_SWITCH
from tests.workflows.recording import HISTORIES, activity_events, replayer
from workflows import ALL_WORKFLOWS


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def result(history: WorkflowHistory) -> dict[str, Any]:
    completed = history.events[-1].workflow_execution_completed_event_attributes
    assert completed.result.payloads, f"{history.workflow_id} did not complete"
    data: dict[str, Any] = json.loads(completed.result.payloads[0].data)
    return data


def has(history: WorkflowHistory, kind: EventType.ValueType) -> bool:
    return any(e.event_type == kind for e in history.events)


def steps(history: WorkflowHistory) -> int:
    return len(
        [
            e
            for e in activity_events(history, EXECUTE_STEP)
            if e.HasField("activity_task_completed_event_attributes")
        ]
    )


# What each recording must show, so that a re-recording that missed its path fails here.
PATHS: dict[str, Callable[[WorkflowHistory], bool]] = {
    "incident-approved-verified": lambda h: (
        result(h)["status"] == "resolved" and result(h)["verified"] is True and steps(h) == 1
    ),
    "incident-two-approvers": lambda h: (
        result(h)["status"] == "resolved" and len(result(h)["decisions"]) == 2
    ),
    "incident-rejected": lambda h: (
        result(h)["status"] == "rejected"
        and has(h, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
        and steps(h) == 0
    ),
    "incident-approval-expired": lambda h: (
        result(h)["status"] == "rejected"
        and has(h, EventType.EVENT_TYPE_TIMER_FIRED)
        and steps(h) == 0
    ),
    "incident-approval-timeout-escalated": lambda h: (
        result(h)["status"] == "escalated"
        and has(h, EventType.EVENT_TYPE_TIMER_FIRED)
        and steps(h) == 0
    ),
    "incident-verification-failed-escalated": lambda h: (
        result(h)["status"] == "escalated" and result(h)["verified"] is False and steps(h) == 1
    ),
    "incident-verification-failed-compensated": lambda h: (
        result(h)["status"] == "rolled_back" and steps(h) == 2
    ),
    "incident-policy-denied": lambda h: (
        result(h)["status"] == "escalated"
        and result(h)["policy"]["allowed"] is False
        and steps(h) == 0
    ),
    "incident-advice-held-to-evidence": lambda h: (
        result(h)["status"] == "rejected"
        and result(h)["rca"]["generated_by"] == "llm"
        and result(h)["policy"]["requires_approval"] is True
        and has(h, EventType.EVENT_TYPE_MARKER_RECORDED)
        and steps(h) == 0
    ),
    "incident-signal-with-start": lambda h: has(
        h, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ),
    "incident-kill-switch-stopped": lambda h: (
        result(h)["status"] == "escalated"
        and len(result(h)["decisions"]) == 1
        and bool(activity_events(h, CHECK_KILL_SWITCH))
        and steps(h) == 0
    ),
    "incident-approve-and-reject-together": lambda h: (
        result(h)["status"] == "rejected"
        and [d["approve"] for d in result(h)["decisions"]] == [True, False]
        and steps(h) == 0
    ),
    "incident-clock-bounded": lambda h: (
        result(h)["status"] == "escalated" and has(h, EventType.EVENT_TYPE_TIMER_FIRED)
    ),
    "incident-late-anomaly-follow-up": lambda h: (
        result(h)["status"] == "resolved" and bool(activity_events(h, OPEN_INCIDENTS))
    ),
    "detection-loop-continue-as-new": lambda h: has(
        h, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    ),
    "detection-loop-signal-with-start": lambda h: bool(activity_events(h, OPEN_INCIDENTS)),
}
# Recorded by older workflow code and never regenerated: running workflows survive upgrades.
# The pre-signing-* ones were recorded before decisions were signed, the kill switch was read
# before each step, the detection loop stopped carrying rules, and late anomalies were looked at.
LEGACY = [
    "incident-approved-restart",
    "incident-approved-restart-notify",
    "pre-signing-detection-loop-signal-with-start",
    "pre-signing-incident-approval-expired",
    "pre-signing-incident-rejected",
    "pre-signing-incident-signal-with-start",
    "pre-signing-incident-two-approvers",
    "pre-signing-incident-verification-failed-compensated",
]


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    await replayer().replay_workflow(load(path))


@pytest.mark.parametrize("name", sorted(PATHS))
def test_recording_shows_its_path(name: str) -> None:
    path = HISTORIES / f"{name}.json"
    assert path.exists(), f"{path} is missing; record it (see tests/workflows/recording.py)"
    assert PATHS[name](load(path)), f"{name}.json does not show the path it is named for"


def test_recordings_cover_every_workflow() -> None:
    present = {p.stem for p in HISTORIES.glob("*.json")}
    assert set(LEGACY) <= present, "legacy histories must stay"
    recorded = {workflow_type(load(p)) for p in HISTORIES.glob("*.json")}
    assert {w.__name__ for w in ALL_WORKFLOWS} <= recorded
