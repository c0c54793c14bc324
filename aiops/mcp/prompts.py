"""Prompts that walk an assistant through an investigation with the read tools."""

from __future__ import annotations

from fastmcp import FastMCP


def register(mcp: FastMCP) -> None:
    @mcp.prompt(name="investigate-service")
    def investigate_service(service: str, namespace: str = "default") -> str:
        """Find out what is wrong with one service, with evidence."""
        return (
            f"Investigate the service {service!r} in namespace {namespace!r}.\n"
            f"1. get_service_health(service={service!r}, namespace={namespace!r}): which golden "
            "signals are worse than their baseline?\n"
            f"2. get_topology(namespace={namespace!r}): who calls {service} and whom it calls; a "
            "dependency may be the real cause.\n"
            f"3. describe_workload and get_events for {service}: recent rollouts, restarts, "
            "OOMKilled, failed scheduling. get_pod_logs for a pod that restarted.\n"
            "4. list_incidents / list_anomalies: is aiops already handling it?\n"
            "5. plot_metric for the signal that departed, to show when it started.\n"
            "Answer with the most likely root cause, the evidence (each with the PromQL or the "
            "Kubernetes object it came from), and what you are unsure of. Do not guess values: "
            "quote what the tools returned."
        )

    @mcp.prompt(name="triage-incident")
    def triage_incident(incident_id: str) -> str:
        """Review an incident and its remediation plan before deciding on it."""
        return (
            f"Triage incident {incident_id}.\n"
            f"1. get_incident({incident_id!r}): the anomalies, the ranked hypotheses and their "
            "evidence, the plan, the policy decision and whether it awaits approval.\n"
            "2. Check the top hypothesis against the live data: get_service_health, "
            "describe_workload, get_events; plot_metric with the incident id.\n"
            "3. explain_policy for the plan's action if the decision is unclear.\n"
            f"4. get_audit_trail({incident_id!r}): what has already happened and who decided.\n"
            "Summarise: what broke, how sure we are, what the plan changes (quote the dry-run "
            "diff and the plan hash), and your recommendation: approve, reject (with reason) or "
            "escalate. Only a person decides; approve_remediation is for them to call."
        )
