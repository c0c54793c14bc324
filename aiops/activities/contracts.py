"""Inputs and results of the incident activities, shared by workflows and the worker.

Pure pydantic, so workflows can import this module without pulling in any I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity

from aiops.domain import Incident, RcaReport, RemediationPlan, Step, Verification
from aiops.playbooks.loader import PlaybookSet
from aiops.playbooks.planner import Observed, RenderedCheck
from aiops.policy.evaluate import ActionRecord, PdbInfo
from aiops.policy.models import Policy


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RulesSnapshot(BaseModel):
    """Policy and playbooks in force when an incident started (versioned by content hash)."""

    model_config = ConfigDict(frozen=True)

    policy: Policy
    playbooks: PlaybookSet


class InvestigateInput(_Message):
    incident: Incident


class ObserveInput(_Message):
    incident_id: str
    report: RcaReport
    namespace: str | None = None


class Observation(_Message):
    """What the cluster and the audit trail say, for planning and for policy."""

    observed: Observed = Field(default_factory=Observed)
    target: str | None = Field(default=None, description="Step.target form")
    labels: dict[str, str] = Field(default_factory=dict)
    pdbs: list[PdbInfo] = Field(default_factory=list)
    history: list[ActionRecord] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class PlanInput(_Message):
    incident: Incident
    report: RcaReport
    playbooks: PlaybookSet
    observed: Observed = Field(default_factory=Observed)


class PlanResult(_Message):
    plan: RemediationPlan
    preconditions: list[RenderedCheck] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    baseline: RemediationPlan | None = Field(
        default=None,
        description="the plan of the deterministic ranking, when the model's re-ranking led to "
        "another plan: the policy holds the plan to at least its approvals",
    )


class PreconditionsInput(_Message):
    incident_id: str
    checks: list[RenderedCheck]


class PreconditionsResult(_Message):
    passed: bool
    findings: list[str]


PROTECTED = (
    "the incident policy's protected namespaces (patterns), which node steps leave alone; "
    "None: the built-in ones"
)


class ExecuteStepInput(_Message):
    incident_id: str
    plan_hash: str
    step_index: int
    step: Step
    dry_run: bool = False
    protected: list[str] | None = Field(default=None, description=PROTECTED)


class DryRunInput(_Message):
    incident_id: str
    plan: RemediationPlan
    protected: list[str] | None = Field(default=None, description=PROTECTED)


class DryRunResult(_Message):
    diffs: list[str]


class VerifyInput(_Message):
    incident_id: str
    verification: Verification


class VerifyResult(_Message):
    verified: bool
    detail: str


# Activity names are explicit and stable: renaming a Python function must not break histories.
INVESTIGATE_INCIDENT = "investigate_incident"
OBSERVE_TARGET = "observe_target"
PLAN_REMEDIATION = "plan_remediation"
CHECK_PRECONDITIONS = "check_preconditions"
DRY_RUN_PLAN = "dry_run_plan"
EXECUTE_STEP = "execute_step"
VERIFY_REMEDIATION = "verify_remediation"


def action_key(incident_id: str, run_id: str | None) -> str:
    """What the executor keys its once-only actions by. The incident id alone is reused by the
    next incident in the same namespace (its workflow id), which would turn that incident's
    remedy into "already done"; the run id makes it one key per incident, shared by retries."""
    return f"{incident_id}/{run_id}" if run_id else incident_id


def current_action_key(incident_id: str) -> str:
    """`action_key` for the incident whose activity is running now (the incident id alone
    when called outside an activity: tests, scripts)."""
    try:
        run_id = activity.info().workflow_run_id
    except RuntimeError:
        return incident_id
    return action_key(incident_id, run_id)
