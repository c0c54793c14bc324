"""Plain JSON views of incidents for tools and resources."""

from __future__ import annotations

from typing import Any

from aiops.config import Settings
from aiops.mcp.incidents import IncidentDetail


def incident_view(d: IncidentDetail, settings: Settings) -> dict[str, Any]:
    report = d.report
    pending = d.pending
    plan = report.plan if report else (pending.plan if pending else None)
    policy = report.policy if report else (pending.decision if pending else None)
    view: dict[str, Any] = {
        "id": d.id,
        "status": d.status.value if d.status else None,
        "workflow": d.execution,
        "started_at": d.started_at.isoformat() if d.started_at else None,
        "closed_at": d.closed_at.isoformat() if d.closed_at else None,
        "service": d.incident.service if d.incident else None,
        "namespace": d.incident.namespace if d.incident else None,
        "severity": d.incident.severity.value if d.incident else None,
        "anomalies": [a.model_dump(mode="json") for a in d.incident.anomalies]
        if d.incident
        else [],
        "rca": d.rca.model_dump(mode="json") if d.rca else None,
        "plan": plan.model_dump(mode="json") | {"plan_hash": plan.plan_hash()} if plan else None,
        "policy_decision": policy.model_dump(mode="json") if policy else None,
        "awaiting_approval": None,
        "temporal_ui": f"{settings.temporal.ui_url}/namespaces/{settings.temporal.namespace}"
        f"/workflows/{d.id}",
    }
    if pending is not None:
        view["awaiting_approval"] = {
            "plan_hash": pending.plan_hash,
            "approvers": pending.decision.approvers,
            "approvals_required": pending.decision.approvals_required,
            "approved_by": pending.approved_by,
            "expires_at": pending.expires_at.isoformat(),
            "dry_run": pending.dry_run,
        }
    if report is not None:
        view["outcome"] = {
            "verified": report.verified,
            "steps": [s.model_dump(mode="json") for s in report.steps],
            "decisions": [dec.model_dump(mode="json") for dec in report.decisions],
        }
    if d.rca is None and d.status is not None:
        view["rca_note"] = "the investigation has not finished yet"
    if d.notes:
        view["notes"] = d.notes
    return view
