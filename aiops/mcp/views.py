"""The incident as tools and resources show it (a typed model: the tool's output schema)."""

from __future__ import annotations

from aiops.config import Settings
from aiops.mcp.incidents import IncidentDetail
from aiops.mcp.models import AwaitingApproval, IncidentView, Outcome, PlanView


def incident_view(d: IncidentDetail, settings: Settings) -> IncidentView:
    report = d.report
    pending = d.pending
    plan = report.plan if report else (pending.plan if pending else None)
    policy = report.policy if report else (pending.decision if pending else None)
    return IncidentView(
        id=d.id,
        status=d.status.value if d.status else None,
        workflow=d.execution,
        started_at=d.started_at,
        closed_at=d.closed_at,
        service=d.incident.service if d.incident else None,
        namespace=d.incident.namespace if d.incident else None,
        severity=d.incident.severity.value if d.incident else None,
        anomalies=list(d.incident.anomalies) if d.incident else [],
        rca=d.rca,
        plan=PlanView(**dict(plan), hash_value=plan.plan_hash()) if plan else None,
        policy_decision=policy,
        awaiting_approval=AwaitingApproval(
            plan_hash=pending.plan_hash,
            approvers=pending.decision.approvers,
            approvals_required=pending.decision.approvals_required,
            approved_by=pending.approved_by,
            expires_at=pending.expires_at,
            dry_run=pending.dry_run,
        )
        if pending is not None
        else None,
        outcome=Outcome(verified=report.verified, steps=report.steps, decisions=report.decisions)
        if report is not None
        else None,
        temporal_ui=f"{settings.temporal.ui_url}/namespaces/{settings.temporal.namespace}"
        f"/workflows/{d.id}",
        rca_note="the investigation has not finished yet"
        if d.rca is None and d.status is not None
        else None,
        # A notification that did not go out is news for whoever looks here instead.
        notes=[*d.notes, *(e.what for e in d.audit if e.what.startswith("notification failed"))],
    )
