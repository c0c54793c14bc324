"""DetectionLoopWorkflow: the detection pass every interval, for as long as aiops runs.

Each pass carries the previous pass's checkpoint (a reference to the detector state file), opens
or joins incidents for what it found (each new incident with the rules as their files say then:
the loop carries no rules of its own), sleeps, and after a bounded number of passes continues as
new so its history stays small. A failed pass is recorded and the loop goes on: Prometheus being
down must never stop detection for good, and never raises an anomaly by itself.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from aiops.activities.contracts import RulesSnapshot
    from aiops.activities.detection import (
        DETECT_ANOMALIES,
        DetectAnomaliesInput,
        DetectAnomaliesResult,
        DetectionCheckpoint,
    )
    from aiops.activities.intake_contracts import (
        OPEN_INCIDENTS,
        OpenIncidentsInput,
        OpenIncidentsResult,
    )


class DetectionLoopInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Loops started by older code carry the rules they started with; they are not used.
    rules: RulesSnapshot | None = None
    stream: str = "detection"
    interval_s: float = Field(default=15.0, gt=0)
    passes_per_run: int = Field(default=200, ge=1)
    checkpoint: DetectionCheckpoint | None = None
    index: bool = True


class LoopStatus(BaseModel):
    passes: int = 0
    failed_passes: int = 0
    incidents_opened_or_joined: list[str] = Field(default_factory=list)
    last_error: str | None = None


RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)


@workflow.defn(name="DetectionLoopWorkflow")
class DetectionLoopWorkflow:
    def __init__(self) -> None:
        self._status = LoopStatus()

    @workflow.run
    async def run(self, inp: DetectionLoopInput) -> None:
        checkpoint = inp.checkpoint
        for _ in range(inp.passes_per_run):
            try:
                result = await workflow.execute_activity(
                    DETECT_ANOMALIES,
                    DetectAnomaliesInput(
                        stream=inp.stream, at=workflow.now(), checkpoint=checkpoint
                    ),
                    result_type=DetectAnomaliesResult,
                    start_to_close_timeout=timedelta(seconds=max(60.0, 4 * inp.interval_s)),
                    retry_policy=RETRY,
                )
                checkpoint = result.checkpoint
                if result.anomalies:
                    opened = await workflow.execute_activity(
                        OPEN_INCIDENTS,
                        OpenIncidentsInput(anomalies=result.anomalies, index=inp.index),
                        result_type=OpenIncidentsResult,
                        start_to_close_timeout=timedelta(seconds=60),
                        retry_policy=RETRY,
                    )
                    seen = self._status.incidents_opened_or_joined
                    seen.extend(i for i in opened.incident_ids if i not in seen)
            except ActivityError as exc:
                self._status.failed_passes += 1
                self._status.last_error = str(exc.cause or exc)[:300]
            self._status.passes += 1
            await workflow.sleep(timedelta(seconds=inp.interval_s))
        workflow.continue_as_new(inp.model_copy(update={"checkpoint": checkpoint, "rules": None}))

    @workflow.query(name="loop_status")
    def loop_status(self) -> LoopStatus:
        return self._status
