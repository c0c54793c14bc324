"""The shared vocabulary of aiops: pure pydantic models, no I/O, nothing of ours imported.

Every workflow message and activity input/output is one of these (or built from them), so they
must stay JSON-serialisable through Temporal's pydantic data converter: plain fields, UTC datetimes,
no numpy types.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    """Base for value objects: immutable and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    BOTH = "both"


class FaultType(StrEnum):
    """What kind of fault a root cause is; the planner chooses playbooks by it."""

    CPU = "cpu"
    MEMORY = "memory"
    LATENCY = "latency"
    ERRORS = "errors"
    BAD_ROLLOUT = "bad_rollout"
    CRASHLOOP = "crashloop"
    TRAFFIC_SURGE = "traffic_surge"
    NODE = "node"
    DEPENDENCY = "dependency"
    NETWORK_LATENCY = "network_latency"
    NETWORK_LOSS = "network_loss"
    UNKNOWN = "unknown"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Anomaly(Frozen):
    """One series that left its normal behaviour, with the window that shows it."""

    signal: str = Field(description="catalog signal name, e.g. 'error_ratio'")
    series: dict[str, str] = Field(description="the series' labels, e.g. {'workload': 'cart'}")
    query: str = Field(description="the PromQL that produced the series")
    start: datetime
    score: float = Field(ge=0.0)
    direction: Direction
    value: float | None = None
    baseline: float | None = None
    evidence_window: tuple[datetime, datetime] | None = None
    blamed_dimensions: list[str] = Field(default_factory=list)
    source: Literal["detector", "alertmanager"] = "detector"

    @property
    def entity(self) -> str:
        """The thing the series is about: a workload, a pod, a node, or the signal itself."""
        for key in ("workload", "destination_workload", "deployment", "pod", "node", "service"):
            if key in self.series:
                return self.series[key]
        return self.signal

    def fingerprint(self) -> str:
        """Stable identity of the series (not of the event), used to de-duplicate."""
        raw = json.dumps({"signal": self.signal, "series": self.series}, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


class Evidence(Frozen):
    """A fact behind a hypothesis, citing where it came from so a person can re-check it."""

    kind: Literal["metric", "event", "rollout", "pod", "node", "log", "topology", "alert"]
    summary: str
    source: str = Field(description="the PromQL, or the Kubernetes object as kind/namespace/name")
    observed_at: datetime | None = None
    value: float | None = None
    baseline: float | None = None
    weight: float = 1.0


class Hypothesis(Frozen):
    target: str = Field(description="deployment name, or node name for node faults")
    target_kind: Literal["Deployment", "Node", "Service"] = "Deployment"
    namespace: str | None = None
    fault: FaultType
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[Evidence] = Field(default_factory=list)


class RcaReport(Frozen):
    incident_id: str
    hypotheses: list[Hypothesis] = Field(description="ranked, most likely first")
    summary: str
    generated_by: Literal["deterministic", "llm"] = "deterministic"
    evidence_ranking: list[str] = Field(
        default_factory=list,
        description="when the model re-ordered the hypotheses: their targets in the "
        "deterministic ranking's order (planning and policy hold the model to it)",
    )
    started_at: datetime
    finished_at: datetime
    notes: list[str] = Field(default_factory=list)

    @property
    def top(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None


class Incident(Frozen):
    id: str
    fingerprint: str
    namespace: str | None = None
    service: str | None = None
    opened_at: datetime
    anomalies: list[Anomaly] = Field(default_factory=list)
    severity: Severity = Severity.WARNING
    notes: list[str] = Field(
        default_factory=list, description="what intake changed, e.g. a future time clamped"
    )


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Step(Frozen):
    """One allow-listed action with its rendered arguments."""

    action: str = Field(description="e.g. k8s.rollout_restart")
    args: dict[str, Any] = Field(default_factory=dict)
    description: str = ""

    @property
    def target(self) -> str:
        kind = self.args.get("kind", "Deployment")
        ns = self.args.get("namespace", "")
        name = self.args.get("name", self.args.get("node", ""))
        return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


class Verification(Frozen):
    query: str = Field(description="PromQL that must return a truthy (non-empty) result")
    hold_for_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(default=300.0, gt=0)


class RemediationPlan(Frozen):
    incident_id: str
    playbook_id: str = Field(description="a playbook id, or 'escalate'")
    namespace: str | None = None
    target: str | None = None
    risk: RiskLevel = RiskLevel.LOW
    steps: list[Step] = Field(default_factory=list)
    compensation: list[Step] = Field(default_factory=list)
    verification: Verification | None = None
    rationale: str = ""

    @property
    def is_escalation(self) -> bool:
        return self.playbook_id == "escalate"

    def plan_hash(self) -> str:
        """What an approver signs: any change to what would run changes the hash."""
        payload = self.model_dump(mode="json", exclude={"rationale"})
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


class TimeoutAction(StrEnum):
    REJECT = "reject"
    ESCALATE = "escalate"


class PolicyDecision(Frozen):
    allowed: bool
    requires_approval: bool
    approvals_required: int = Field(default=1, ge=0)
    approvers: list[str] = Field(default_factory=list, description="identities allowed to decide")
    approval_timeout_s: float = Field(default=900.0, gt=0)
    on_timeout: TimeoutAction = TimeoutAction.REJECT
    reasons: list[str] = Field(default_factory=list)
    policy_version: str = ""


class ApprovalRequest(Frozen):
    incident_id: str
    plan_hash: str
    plan: RemediationPlan
    decision: PolicyDecision
    requested_at: datetime
    expires_at: datetime
    dry_run: list[str] = Field(default_factory=list, description="human-readable diffs")
    approved_by: list[str] = Field(default_factory=list)


class Decision(Frozen):
    """An answer to an approval request, sent through the workflow's `decide` update.

    It counts only with proof of who made it: the front door that authenticated the person (the
    MCP server, the Slack app), or the person's own key on the CLI, signs every field but
    `identity`; the workflow verifies the signature against the policy and records in `identity`
    the person the principal maps to. A sender cannot name the person."""

    approve: bool
    plan_hash: str
    identity: str = Field(
        default="", description="the person, as the workflow resolved them; senders leave it empty"
    )
    channel: Literal["cli", "mcp", "slack", "policy", "test"] = "cli"
    reason: str = ""
    incident_id: str = Field(default="", description="the workflow id the decision is for")
    run_id: str = Field(default="", description="and its run: a decision holds for one run")
    principal: str = Field(
        default="",
        description="who the front door authenticated: a Slack user id, an MCP token's principal; "
        "on the CLI the signing key itself",
    )
    issued_at: AwareDatetime | None = None
    nonce: str = Field(default="", description="random; a decision counts once")
    key: str = Field(default="", description="the signing public key (ed25519:...)")
    signature: str = Field(default="", description="ed25519 signature over the rest, hex")


class StepResult(Frozen):
    action: str
    target: str
    ok: bool
    changed: bool
    message: str = ""
    dry_run: bool = False


class IncidentStatus(StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"
    EXECUTING = "executing"
    VERIFYING = "verifying"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    ESCALATED = "escalated"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class DecideResult(Frozen):
    """What the `decide` update answers: what the workflow made of the decision. `status` is the
    incident's state once the decision took effect: awaiting approval (more approvals needed),
    executing (the plan runs), rejected (by this decision or another at the same moment)."""

    accepted: bool
    status: IncidentStatus
    approved_by: list[str]
    approvals_needed: int
    decided_by: str = Field(default="", description="the person the decision was counted for")
    rejected_by: str = ""


class AuditEntry(Frozen):
    at: datetime
    actor: str
    what: str


class IncidentReport(Frozen):
    incident_id: str
    status: IncidentStatus
    rca: RcaReport | None = None
    plan: RemediationPlan | None = None
    policy: PolicyDecision | None = None
    decisions: list[Decision] = Field(default_factory=list)
    steps: list[StepResult] = Field(default_factory=list)
    verified: bool | None = None
    audit: list[AuditEntry] = Field(default_factory=list)
    opened_at: datetime
    closed_at: datetime | None = None
