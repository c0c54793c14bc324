"""The incident's audit trail in plain words: the workflow's own audit entries (who decided
what), plus what Temporal recorded around them (activities run, updates refused, the close)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from aiops.domain import Decision
from aiops.mcp.incidents import IncidentDetail

_ACTIVITY_WORDS = {
    "investigate_incident": "investigated the anomalies",
    "observe_target": "observed the target in the cluster",
    "plan_remediation": "matched playbooks to the root cause",
    "check_preconditions": "checked the playbook's preconditions",
    "dry_run_plan": "dry-ran the plan on the API server",
    "execute_step": "ran a remediation step",
    "verify_remediation": "verified the fix with PromQL",
}


async def audit_trail(client: Client, d: IncidentDetail) -> list[dict[str, str]]:
    rows: list[tuple[datetime, str, str]] = [(e.at, e.actor, e.what) for e in d.audit]
    scheduled: dict[int, str] = {}
    for ev in d.history:
        at = ev.event_time.ToDatetime().replace(tzinfo=UTC)
        kind = ev.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED and not d.audit:
            rows.append((at, "aiops", "incident workflow started"))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[ev.event_id] = ev.activity_task_scheduled_event_attributes.activity_type.name
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name = scheduled.get(ev.activity_task_completed_event_attributes.scheduled_event_id, "")
            rows.append((at, "worker", _ACTIVITY_WORDS.get(name, f"ran {name}")))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            attrs = ev.activity_task_failed_event_attributes
            name = scheduled.get(attrs.scheduled_event_id, "")
            rows.append((at, "worker", f"{name} failed: {attrs.failure.message[:200]}"))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            req = ev.workflow_execution_update_accepted_event_attributes.accepted_request
            payloads = req.input.args.payloads
            # The workflow's own audit already names each decision; the history has them when
            # the queries could not be answered.
            if req.input.name == "decide" and payloads and not d.audit:
                dec = (await client.data_converter.decode([payloads[0]], [Decision]))[0]
                verb = "approved" if dec.approve else "rejected"
                rows.append(
                    (
                        at,
                        dec.identity,
                        f"{verb} plan {dec.plan_hash} via {dec.channel} (accepted by the workflow)",
                    )
                )
        elif kind in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        ):
            rows.append(
                (
                    at,
                    "temporal",
                    "workflow ended: "
                    + EventType.Name(kind).removeprefix("EVENT_TYPE_WORKFLOW_EXECUTION_").lower(),
                )
            )
    rows.sort(key=lambda r: r[0])
    return [{"at": at.isoformat(), "who": who, "what": what} for at, who, what in rows]
