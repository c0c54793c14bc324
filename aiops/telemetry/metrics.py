"""The Prometheus series aiops exposes about itself (prefix `aiops_`).

One process-wide registry (prometheus_client's default, which also carries the process's CPU,
memory and file descriptors). Labels stay bounded: signals come from the catalog and the alert
rules, actions from the playbooks' allow-list, statuses from IncidentStatus.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

# Detection passes take 0.1-1 s on thousands of series; a stalled Prometheus makes them slow.
_PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Investigations: under a second deterministic, tens of seconds with a model.
_INVESTIGATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
# People answer in seconds to hours.
_APPROVAL_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0)

BUILD = Info("aiops_build", "version of the running aiops")

DETECTION_PASS_SECONDS = Histogram(
    "aiops_detection_pass_seconds",
    "wall time of one detection pass (queries and scoring)",
    buckets=_PASS_BUCKETS,
)
DETECTION_LAG_SECONDS = Gauge(
    "aiops_detection_lag_seconds",
    "how far the newest sample scored by the last pass lags behind the end of that pass",
)
DETECTION_LAST_PASS = Gauge(
    "aiops_detection_last_pass_timestamp_seconds",
    "when the last detection pass finished (unix time); the loop is stalled when this stops",
)
DETECTION_PASSES = Counter(
    "aiops_detection_passes", "detection passes by outcome (failed: the pass raised)", ["outcome"]
)
DETECTION_SIGNAL_FAILURES = Counter(
    "aiops_detection_signal_failures",
    "signals whose queries failed in a pass (Prometheus down or a bad query)",
    ["signal"],
)
SERIES_WATCHED = Gauge("aiops_series_watched", "series the detector tracks across all signals")
ANOMALIES = Counter(
    "aiops_anomalies", "anomalies raised, by signal (alert:<name> for Alertmanager)", ["signal"]
)
INCIDENTS = Gauge(
    "aiops_incidents",
    "incident workflows in Temporal's visibility by status (open ones and those closed within "
    "the namespace's retention)",
    ["status", "open"],
)
APPROVALS_PENDING = Gauge("aiops_approvals_pending", "plans waiting for a person's decision")
APPROVAL_OLDEST_SECONDS = Gauge(
    "aiops_approval_oldest_pending_seconds", "age of the oldest plan waiting for a decision"
)
APPROVALS_OVERDUE = Gauge(
    "aiops_approvals_overdue",
    "plans still waiting although their request expired (the workflow should have timed out)",
)
APPROVAL_LATENCY_SECONDS = Histogram(
    "aiops_approval_latency_seconds",
    "from the approval request to each accepted decision",
    ["decision"],
    buckets=_APPROVAL_BUCKETS,
)
VISIBILITY_ERRORS = Counter(
    "aiops_visibility_errors", "failed reads of incident and approval state from Temporal"
)
ACTIONS = Counter(
    "aiops_actions",
    "remediation steps executed on the cluster, by action and outcome (succeeded, failed)",
    ["action", "outcome"],
)
INVESTIGATION_SECONDS = Histogram(
    "aiops_investigation_seconds",
    "investigation of an incident (evidence, ranking, optional model)",
    ["outcome"],
    buckets=_INVESTIGATION_BUCKETS,
)
ACTIVITY_SECONDS = Histogram(
    "aiops_activity_seconds",
    "every activity the worker runs, by name and outcome",
    ["activity", "outcome"],
    buckets=_INVESTIGATION_BUCKETS,
)
LLM_TOKENS = Counter("aiops_llm_tokens", "tokens the configured model used", ["model"])
LLM_REQUESTS = Counter(
    "aiops_llm_requests", "requests to the model, by outcome", ["model", "outcome"]
)
LLM_COST_USD = Counter(
    "aiops_llm_cost_usd",
    "model cost at AIOPS_TELEMETRY__LLM_USD_PER_1K_TOKENS",
    ["model"],
)
ALERTS_RECEIVED = Counter(
    "aiops_alerts_received",
    "firing alerts the webhook turned into anomalies, by outcome",
    ["outcome"],
)
MCP_TOOL_CALLS = Counter(
    "aiops_mcp_tool_calls", "MCP tool calls, by tool and outcome", ["tool", "outcome"]
)
