"""What the read tools return, as typed models: fastmcp publishes each as the tool's output
schema, so a client knows the shape of an answer before it asks."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from aiops.domain import (
    Anomaly,
    Decision,
    PolicyDecision,
    RcaReport,
    RemediationPlan,
    StepResult,
)

# ---- incidents (Temporal) ----------------------------------------------------------------


class IncidentRow(BaseModel):
    id: str
    status: str = Field(description="the workflow's status: Running, Completed, Failed, ...")
    started_at: datetime
    closed_at: datetime | None = None


class PlanView(RemediationPlan):
    # Stored under another attribute name: RemediationPlan.plan_hash() is the method computing it.
    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    hash_value: str = Field(
        alias="plan_hash", description="what approve_remediation expects as plan_hash"
    )


class AwaitingApproval(BaseModel):
    plan_hash: str
    approvers: list[str]
    approvals_required: int
    approved_by: list[str]
    expires_at: datetime
    dry_run: list[str] = Field(description="the server-side dry run's diff, line by line")


class Outcome(BaseModel):
    verified: bool | None
    steps: list[StepResult]
    decisions: list[Decision]


class IncidentView(BaseModel):
    id: str
    status: str | None = Field(description="the incident's status, e.g. awaiting_approval")
    workflow: str = Field(description="the Temporal workflow's status, e.g. RUNNING")
    started_at: datetime | None
    closed_at: datetime | None
    service: str | None
    namespace: str | None
    severity: str | None
    anomalies: list[Anomaly]
    rca: RcaReport | None
    plan: PlanView | None
    policy_decision: PolicyDecision | None
    awaiting_approval: AwaitingApproval | None = None
    outcome: Outcome | None = None
    temporal_ui: str
    rca_note: str | None = None
    notes: list[str] = Field(default_factory=list)


class AnomalyRow(Anomaly):
    incident_id: str

    @computed_field(description="the workload, pod or node the anomaly is about")  # type: ignore[prop-decorator]
    @property
    def entity(self) -> str:
        return super().entity


class AuditRow(BaseModel):
    at: datetime
    who: str
    what: str


# ---- metrics (Prometheus) ----------------------------------------------------------------


class SeriesView(BaseModel):
    labels: dict[str, str]
    points: list[tuple[float, float | None]] = Field(
        description="[unix time, value]; null where Prometheus had no number"
    )


class QueryAnswer(BaseModel):
    query: str
    kind: str = Field(description="instant or range")
    series: list[SeriesView]
    step_s: float | None = None
    truncated: str | None = None


class SignalHealth(BaseModel):
    signal: str
    group: str
    entity: str
    unit: str
    now: float | None
    baseline: float | None = Field(description="median over the hour before the last 10 min")
    verdict: str = Field(description="normal, worse than baseline, no data or no baseline")
    query: str


class ServiceHealth(BaseModel):
    service: str
    namespace: str
    at: datetime
    signals: list[SignalHealth]
    note: str | None = None
    problems: list[str] = Field(default_factory=list)


class Call(BaseModel):
    source: str = Field(alias="from")
    to: str
    rps: float

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)


class Topology(BaseModel):
    namespace: str
    window: str
    services: list[str]
    calls: list[Call]
    query: str
    edges: list[dict[str, object]] = Field(
        default_factory=list, description="each edge's health now against the hour before"
    )
    latency: str | None = Field(default=None, description="how the edges' latencies are measured")
    problems: list[str] = Field(default_factory=list)


# ---- cluster (Kubernetes) ----------------------------------------------------------------


class WorkloadView(BaseModel):
    deployment: dict[str, object]
    pods: list[dict[str, object]]
    replicasets: list[dict[str, object]]
    events: list[dict[str, object]]


class PodLog(BaseModel):
    namespace: str
    pod: str
    log: str
    truncated: bool


# ---- rules (playbooks and policy) --------------------------------------------------------


class PlaybookRow(BaseModel):
    id: str
    description: str
    risk: str
    priority: int
    faults: list[str]
    actions: list[str]
    compensation: list[str]
    verification: dict[str, object]


class PolicyAnswer(BaseModel):
    plan: dict[str, object]
    decision: PolicyDecision
    you: str
    you_may_approve: bool
