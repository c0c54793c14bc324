"""Running a plan's steps from an IncidentWorkflow: one activity per step, in order, each behind
a fresh read of the policy's kill switch, every result recorded for the audit trail and for
other incidents' budgets (the `actions` query)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from aiops.activities.contracts import EXECUTE_STEP, ExecuteStepInput
    from aiops.activities.kill_switch import CHECK_KILL_SWITCH, KillSwitchInput, KillSwitchState
    from aiops.domain import Incident, RemediationPlan, Step, StepResult
    from aiops.policy.evaluate import ActionRecord
    from workflows.incident_messages import KILL_SWITCH_PATCH, READ_RETRY, STEP_RETRY

Ran = Literal["ok", "failed", "stopped"]
Note = Callable[[str, str], None]
Progress = Callable[[str, str], Awaitable[None]]
KILL_SWITCH_TIMEOUT = timedelta(seconds=30)


def cause_of(exc: ActivityError) -> str:
    """What went wrong in an activity, in the words of the error it raised."""
    cause = exc.cause
    return getattr(cause, "message", None) or str(cause or exc)


class StepRunner:
    def __init__(self, note: Note, progress: Progress) -> None:
        self.note = note
        self.progress = progress
        self.results: list[StepResult] = []
        self.actions: list[ActionRecord] = []
        self.started = False  # a step was let through the kill switch
        # The policy's protected namespaces: node steps (drain) leave their pods where they are.
        self.protected: list[str] = []

    async def run(
        self, incident: Incident, plan: RemediationPlan, steps: list[Step], kind: str
    ) -> Ran:
        """ "ok"; "failed" when a step failed; "stopped" when the kill switch is on (or could
        not be read) before a step, which then does not run."""
        for index, step in enumerate(steps):
            what = f"{kind} {index + 1} {step.action} on {step.target}"
            stop = await self._kill_switch(incident, what)
            if stop is not None:
                self.note("policy", f"{what} not run: {stop}; a person takes over")
                return "stopped"
            self.started = True
            result = await self._execute(incident, plan, index, step)
            self.results.append(result)
            self.actions.append(
                ActionRecord(
                    at=workflow.now(),
                    action=step.action,
                    target=step.target,
                    incident_id=incident.id,
                    outcome="succeeded" if result.ok else "failed",
                )
            )
            self.note("aiops", f"{what}: {result.message}")
            await self.progress(
                f"{kind}-{index + 1}",
                f"{'✅' if result.ok else '❌'} {kind} {index + 1}: "
                f"{step.action} on {step.target}: {result.message}",
            )
            if not result.ok:
                return "failed"
        return "ok"

    def mark_outcome(self, outcome: str) -> None:
        self.actions = [a.model_copy(update={"outcome": outcome}) for a in self.actions]

    async def _execute(
        self, incident: Incident, plan: RemediationPlan, index: int, step: Step
    ) -> StepResult:
        try:
            result: StepResult = await workflow.execute_activity(
                EXECUTE_STEP,
                ExecuteStepInput(
                    incident_id=incident.id,
                    plan_hash=plan.plan_hash(),
                    step_index=index,
                    step=step,
                    protected=self.protected,
                ),
                result_type=StepResult,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(seconds=60),
                retry_policy=STEP_RETRY,
            )
        except ActivityError as exc:
            return StepResult(
                action=step.action,
                target=step.target,
                ok=False,
                changed=False,
                message=cause_of(exc),
            )
        return result

    async def _kill_switch(self, incident: Incident, what: str) -> str | None:
        """Why the next step must not run (the policy's kill switch as its file says now), or
        None. Fails closed: a switch that cannot be read stops the step. Histories from before
        the switch was read here replay without the read."""
        if not workflow.patched(KILL_SWITCH_PATCH):
            return None
        try:
            state = await workflow.execute_activity(
                CHECK_KILL_SWITCH,
                KillSwitchInput(incident_id=incident.id, step=what),
                result_type=KillSwitchState,
                schedule_to_close_timeout=KILL_SWITCH_TIMEOUT,
                retry_policy=READ_RETRY,
            )
        except ActivityError as exc:
            return f"the kill switch could not be read ({cause_of(exc)})"
        return state.reason if state.on else None
