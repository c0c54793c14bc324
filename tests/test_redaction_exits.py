"""One redaction step at every exit (#14 item 8): a secret quoted by a log line, an event or a
query leaves through none of Slack, MCP, the report stored in Temporal history or the logs."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from fastmcp import Client as McpClient
from fastmcp.exceptions import ToolError

from aiops.activities.incident import AgentInvestigator
from aiops.agent.graph import AgentDeps
from aiops.config import PrometheusSettings, Settings
from aiops.domain import Evidence, FaultType, Hypothesis, Incident, RcaReport
from aiops.integrations.redact import Redactor, lazy_data
from aiops.logs import configure_logging, get_logger
from aiops.mcp.server import create_server
from tests.servers import PrometheusServer

SECRET = "hunter2-Xy9-do-not-leak"
LINE = f"db connect failed: postgres://app:{SECRET}@db:5432 password={SECRET}"
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def report_quoting_a_log_line() -> RcaReport:
    return RcaReport(
        incident_id="incident-abc",
        summary=f"cartservice crashes: {LINE}",
        started_at=NOW,
        finished_at=NOW,
        hypotheses=[
            Hypothesis(
                target="cartservice",
                namespace="boutique",
                fault=FaultType.CRASHLOOP,
                confidence=0.9,
                evidence=[Evidence(kind="log", summary=LINE, source="Pod/boutique/cart-1")],
            )
        ],
    )


async def test_the_report_stored_in_history_is_redacted() -> None:
    investigator = AgentInvestigator(AgentDeps(metrics=None, cluster=None, llm=None))  # type: ignore[arg-type]

    async def investigate(incident: Incident, deps: AgentDeps, **_options: object) -> RcaReport:
        return report_quoting_a_log_line()

    import aiops.activities.incident as activities

    original = activities.ainvestigate
    activities.ainvestigate = investigate  # type: ignore[assignment]
    try:
        incident = Incident(
            id="incident-abc",
            fingerprint="f",
            namespace="boutique",
            service="cartservice",
            opened_at=NOW,
            anomalies=[],
        )
        stored = await investigator.investigate(incident)
    finally:
        activities.ainvestigate = original
    assert SECRET not in stored.model_dump_json()
    assert stored.hypotheses[0].evidence[0].source == "Pod/boutique/cart-1"  # evidence stays


async def test_mcp_answers_and_errors_are_redacted_whichever_tool(
    prometheus: PrometheusServer,
) -> None:
    settings = Settings(prometheus=PrometheusSettings(url=prometheus.url))
    async with McpClient[Any](create_server(settings)) as mcp:
        answer = await mcp.call_tool("query_metrics", {"promql": f'up{{password="{SECRET}"}}'})
        assert SECRET not in json.dumps(answer.structured_content)
        assert SECRET not in str(answer.content)
        with pytest.raises(ToolError, match="Prometheus rejected the PromQL") as err:
            await mcp.call_tool("query_metrics", {"promql": f'rate(up{{token="{SECRET}"}}['})
        assert SECRET not in str(err.value)


def test_log_lines_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("info", "json", redact=lazy_data())
    try:
        get_logger("test").info("kube call failed", error=LINE, incident_id="incident-abc")
        # A field named for a secret is masked whole, though its value looks like any word.
        get_logger("test").info("login", password="plainword", user="alice")
    finally:
        configure_logging("info", "json")
    first, second = (json.loads(x) for x in out.getvalue().strip().splitlines()[-2:])
    assert SECRET not in out.getvalue() and "plainword" not in out.getvalue()
    assert first["incident_id"] == "incident-abc" and second["user"] == "alice"


def test_redacting_a_report_keeps_its_type() -> None:
    again = Redactor().model(report_quoting_a_log_line())
    assert isinstance(again, RcaReport) and SECRET not in again.summary
