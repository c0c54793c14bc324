"""What an IncidentWorkflow is started with and sent, and the constants its code shares.

Clients (aiops.incidents) import these to talk to the workflow; nothing here does I/O.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from aiops.activities.contracts import RulesSnapshot
    from aiops.domain import Anomaly, Incident

ADD_ANOMALIES = "add_anomalies"  # the signal of signal-with-start; start_workflow takes a name


class IncidentInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    incident: Incident
    rules: RulesSnapshot
    # Histories recorded before the kill switch was read from the policy before each step still
    # carry this field; nothing sets it any more.
    kill_switch: bool = False
    # Upsert the Aiops* search attributes only where the namespace has them: on a namespace
    # without them every upsert would fail the workflow task and stall the incident.
    index: bool = True
    # When the first investigation finds no remedy within this long of the anomaly's start, the
    # workflow investigates once more when that much time has passed (see `run`).
    settle_s: float = Field(default=30.0, ge=0)


class AnomalyBatch(BaseModel):
    """Anomalies that join an open incident (the `add_anomalies` signal)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    anomalies: list[Anomaly]
    notes: list[str] = Field(default_factory=list, description="what intake changed, if anything")


def anomaly_key(anomaly: Anomaly) -> str:
    """One anomaly of one series: the same key twice is the same news."""
    return f"{anomaly.fingerprint()}@{anomaly.start.isoformat()}"


SERVICE = SearchAttributeKey.for_keyword("AiopsService")
NAMESPACE = SearchAttributeKey.for_keyword("AiopsNamespace")
SEVERITY = SearchAttributeKey.for_keyword("AiopsSeverity")
FAULT = SearchAttributeKey.for_keyword("AiopsFault")
STATUS = SearchAttributeKey.for_keyword("AiopsStatus")
PLAYBOOK = SearchAttributeKey.for_keyword("AiopsPlaybook")

# Changes of the workflow's commands, each behind a patch so that running incidents replay.
NOTIFY_PATCH = "notify-v1"
SETTLE_PATCH = "settle-v1"
CLOCK_PATCH = "clock-bound-v1"  # an opening time from outside never stretches a wait
OUTCOME_PATCH = "decide-outcome-v1"  # `decide` answers with what the workflow made of it
KILL_SWITCH_PATCH = "kill-switch-v1"  # the policy's kill switch is read before every step
LATE_PATCH = "late-anomalies-v1"  # anomalies that join after planning are investigated
ADVICE_PATCH = "advice-floor-v1"  # the model's plan needs what the deterministic plan needed
# late anomalies whose investigation names no cause of their own and ours next are its symptoms
SYMPTOM_PATCH = "late-symptoms-v1"

NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)
READ_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[
        "InvalidStepError",
        "TargetNotFoundError",
        "ActionRefusedError",
        "PermissionDeniedError",
        "KubernetesNotConfigured",
    ],
)
