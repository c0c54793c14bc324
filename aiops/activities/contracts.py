"""Inputs and results of the activities, shared by workflows and the worker.

Pure pydantic, so workflows can import this module without pulling in any I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from aiops.domain import Incident, RcaReport, RemediationPlan, Step


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InvestigateInput(_Message):
    incident: Incident


class PlanInput(_Message):
    incident: Incident
    report: RcaReport


class ExecuteStepInput(_Message):
    incident_id: str
    plan_hash: str
    step_index: int
    step: Step
    dry_run: bool = False


class DryRunInput(_Message):
    incident_id: str
    plan: RemediationPlan


class DryRunResult(_Message):
    diffs: list[str]


# Activity names are explicit and stable: renaming a Python function must not break histories.
INVESTIGATE_INCIDENT = "investigate_incident"
PLAN_REMEDIATION = "plan_remediation"
DRY_RUN_PLAN = "dry_run_plan"
EXECUTE_STEP = "execute_step"
