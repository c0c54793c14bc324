"""#14 item 2 through the real model path: the scripted OpenAI-compatible model re-ranks a
workload above the node the evidence blames. Its plan (an automatic, low-risk restart) keeps the
approvals the node's drain needed, and a target the ranking never listed is not acted on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiops.activities.contracts import PlanInput
from aiops.activities.incident import IncidentActivities
from aiops.agent import AgentConfig, AgentDeps, investigate
from aiops.config import LlmSettings
from aiops.domain import RcaReport
from aiops.integrations.llm import OpenAiChat
from aiops.integrations.prometheus import Prometheus
from aiops.playbooks.loader import PlaybookSet, load_playbooks
from aiops.policy import PolicyContext, evaluate, parse_policy
from aiops.policy.advice import hold_to_evidence
from tests.agent.conftest import incident_for
from tests.agent.scripted_llm import ScriptedLlm, answer
from tests.agent.shop import FakeCluster, History

REPO = Path(__file__).resolve().parents[2]
NS = "shop-node"
NODE = "shop-node-node-2"
# The shipped default policy, for the shop's namespaces.
POLICY = parse_policy(
    (REPO / "policies" / "default.yaml").read_text().replace("[boutique, boutique-*]", "[shop-*]"),
    "default.yaml",
)


def playbooks() -> PlaybookSet:
    """The shipped playbooks, for less certain diagnoses (the shop's node at ~0.7, its second
    hypothesis at ~0.3), so that both the evidence's plan and the model's act."""
    books = dict(load_playbooks(REPO / "playbooks").playbooks)
    for name in ("restart-deployment", "cordon-and-drain-node"):
        book = books[name]
        books[name] = book.model_copy(
            update={"matches": book.matches.model_copy(update={"min_confidence": 0.1})}
        )
    return PlaybookSet(playbooks=books)


def advised(prom: Prometheus, history: History, servers: list[ScriptedLlm], top: str) -> RcaReport:
    server = ScriptedLlm(
        [answer({"ranking": [top, NODE], "summary": f"{top} burns CPU; the node is fine."})]
    )
    servers.append(server)
    llm = OpenAiChat(LlmSettings(base_url=server.base_url, model="scripted", timeout_s=5))
    # Whatever the re-ranking rules let through: here, any order of the listed targets.
    config = AgentConfig(after_s=300, rerank_min_share=0.0)
    deps = AgentDeps(metrics=prom, cluster=FakeCluster(NS, history), llm=llm, config=config)
    return investigate(incident_for(NS, history), deps)


async def test_the_models_plan_needs_the_approvals_of_the_deterministic_one(
    prom: Prometheus, history: History, scripted: list[ScriptedLlm]
) -> None:
    report = advised(prom, history, scripted, "payment")
    assert report.generated_by == "llm" and report.top is not None
    assert report.top.target == "payment"
    assert report.evidence_ranking[0] == NODE  # what the evidence said, kept in the report

    planned = await IncidentActivities().plan_remediation(
        PlanInput(incident=incident_for(NS, history), report=report, playbooks=playbooks())
    )
    assert planned.plan.playbook_id == "restart-deployment" and planned.plan.target == "payment"
    assert planned.baseline is not None
    assert planned.baseline.playbook_id == "cordon-and-drain-node"

    context = PolicyContext(
        now=datetime.now(UTC),
        labels={f"Deployment/{NS}/payment": {}, f"Node/{NODE}": {}},
    )
    alone = evaluate(planned.plan, context, POLICY)
    assert alone.allowed and not alone.requires_approval, "the defect: it would run unattended"
    floor = evaluate(planned.baseline, context, POLICY)
    assert floor.requires_approval and floor.approvals_required == 2
    decision = hold_to_evidence(alone, planned.plan, planned.baseline, context, POLICY)
    assert decision.allowed and decision.requires_approval
    assert decision.approvals_required == 2
    assert "re-ranking chose restart-deployment on payment" in decision.reasons[-1]


async def test_a_target_outside_the_ranking_is_never_planned(
    prom: Prometheus, history: History, scripted: list[ScriptedLlm]
) -> None:
    report = advised(prom, history, scripted, "payment")
    # However the report came to name it (a model, a bug, an edited history), the planner acts
    # only on targets the deterministic ranking listed.
    stray = report.top
    assert stray is not None
    forged = report.model_copy(
        update={
            "hypotheses": [stray.model_copy(update={"target": "cart-admin"}), *report.hypotheses]
        }
    )
    planned = await IncidentActivities().plan_remediation(
        PlanInput(incident=incident_for(NS, history), report=forged, playbooks=playbooks())
    )
    assert planned.plan.target == NODE
    assert planned.baseline is None
    assert any("cart-admin is not in the deterministic ranking" in s for s in planned.skipped)
