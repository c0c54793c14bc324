"""A slow or broken model never costs the investigation its activity (#14 items 12 and 14): the
investigate activity, run with a time limit through Temporal's activity environment, answers
within it with the deterministic report, whatever the scripted model behind real HTTP does."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from aiops.activities.contracts import InvestigateInput
from aiops.activities.incident import AgentInvestigator, IncidentActivities
from aiops.agent import AgentConfig, AgentDeps, investigate
from aiops.config import LlmSettings
from aiops.domain import RcaReport
from aiops.integrations.llm import OpenAiChat
from aiops.integrations.prometheus import Prometheus
from tests.agent.conftest import incident_for
from tests.agent.scripted_llm import Reply, ScriptedLlm, tool_call
from tests.agent.shop import FakeCluster, History

NS = "shop-cpu"
LIMIT_S = 8.0


async def run_activity(
    prom: Prometheus, history: History, scripted: list[ScriptedLlm], replies: list[Reply]
) -> tuple[RcaReport, float]:
    server = ScriptedLlm(replies)
    scripted.append(server)
    # The shipped model timeout (30 s per call) and loop (5 calls): 150 s if nothing bounds it.
    llm = OpenAiChat(LlmSettings(base_url=server.base_url, model="scripted"))
    deps = AgentDeps(
        metrics=prom, cluster=FakeCluster(NS, history), llm=llm, config=AgentConfig(after_s=300)
    )
    activities = IncidentActivities(investigator=AgentInvestigator(deps))
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, start_to_close_timeout=timedelta(seconds=LIMIT_S))
    started = time.monotonic()
    report = await env.run(
        activities.investigate_incident, InvestigateInput(incident=incident_for(NS, history))
    )
    return report, time.monotonic() - started


@pytest.mark.parametrize(
    ("replies", "why"),
    [
        # Answers, slowly, with more tool calls each time: the loop would take 5 x 3 s.
        (
            [dataclasses.replace(tool_call("list_pods", {}), delay_s=3.0) for _ in range(5)],
            ("no time left", "timed out"),
        ),
        # One call that would take longer than the whole activity.
        ([Reply(body=None, delay_s=30.0)], ("timed out",)),
        # Garbage instead of a completion.
        ([Reply(status=200, raw=b"\x00\xffnot json at all")], ("model",)),
    ],
    ids=["slow-loop", "stuck-call", "garbage"],
)
async def test_the_investigation_answers_within_its_activity_time(
    prom: Prometheus,
    history: History,
    scripted: list[ScriptedLlm],
    replies: list[Reply],
    why: tuple[str, ...],
) -> None:
    report, took = await run_activity(prom, history, scripted, replies)
    assert took < LIMIT_S - 1.0, f"took {took:.1f} s of a {LIMIT_S:.0f} s activity"
    plain = investigate(
        incident_for(NS, history),
        AgentDeps(metrics=prom, cluster=FakeCluster(NS, history), config=AgentConfig(after_s=300)),
    )
    assert report.generated_by == "deterministic"
    assert [h.target for h in report.hypotheses] == [h.target for h in plain.hypotheses]
    unused = [n for n in report.notes if n.startswith("model advice unused")]
    assert unused and any(w in unused[0] for w in why), report.notes
