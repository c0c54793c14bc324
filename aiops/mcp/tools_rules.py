"""Read tools over the rules in force: the playbooks and what the policy decides."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from pydantic import Field, ValidationError

from aiops.domain import RemediationPlan, RiskLevel, Step
from aiops.mcp.auth import current_caller
from aiops.mcp.backends import Backends
from aiops.mcp.common import BACKENDS, READ_ONLY, TAGS, bounded, k8s_name
from aiops.mcp.models import PlaybookRow, PolicyAnswer
from aiops.policy import PolicyContext, can_approve, evaluate
from aiops.policy.models import ACTION_KINDS


def list_playbooks(b: Backends = BACKENDS) -> list[PlaybookRow]:
    """The allow-listed remediation playbooks: what each fixes, its risk, its steps and
    how it verifies the fix."""
    return [
        PlaybookRow(
            id=p.id,
            description=p.description,
            risk=p.risk.value,
            priority=p.priority,
            faults=[f.value for f in p.matches.faults],
            actions=[s.action for s in p.steps],
            compensation=[s.action for s in p.compensation],
            verification=p.verification.model_dump(mode="json"),
        )
        for p in sorted(b.playbooks().playbooks.values(), key=lambda p: p.priority)
    ]


def explain_policy(
    action: str,
    name: str,
    namespace: str | None = None,
    replicas: int | None = None,
    risk: str = "low",
    current_replicas: int | None = None,
    labels: Annotated[dict[str, str] | None, Field(description="the target's labels")] = None,
    b: Backends = BACKENDS,
) -> PolicyAnswer:
    """What the policy decides for one action on one target (allowed? approval needed,
    by whom?), with every reason, and whether you may approve it."""
    plan = _plan(action, name, namespace, replicas, risk)
    target = plan.steps[0].target
    try:
        context = PolicyContext(
            now=datetime.now(UTC),
            current_replicas={target: current_replicas} if current_replicas is not None else {},
            labels={target: labels} if labels else {},
        )
    except ValidationError as exc:
        raise ToolError(f"bad argument: {exc.errors()[0]['msg']}") from exc
    policy = b.policy()
    decision = evaluate(plan, context, policy)
    caller = current_caller(b.settings, policy)
    shown: dict[str, object] = {"action": action, "target": target, "risk": risk}
    if replicas is not None:
        shown["replicas"] = replicas
    return PolicyAnswer(
        plan=shown,
        decision=decision,
        you=caller.describe(),
        you_may_approve=bool(caller.identity and can_approve(caller.identity, decision)),
    )


def _plan(
    action: str, name: str, namespace: str | None, replicas: int | None, risk: str
) -> RemediationPlan:
    """The one-step plan the question is about, or a ToolError naming the bad argument."""
    if action not in ACTION_KINDS:
        raise ToolError(
            f"action must be one of {', '.join(sorted(ACTION_KINDS))}; got {action[:60]!r}"
        )
    if risk not in {r.value for r in RiskLevel}:
        raise ToolError(f"risk must be one of low, medium, high; got {risk[:30]!r}")
    name = k8s_name(name, "name")
    kind = ACTION_KINDS[action]
    if kind == "Node":
        args: dict[str, Any] = {"node": name, "kind": kind}
    else:
        if namespace is None:
            raise ToolError(f"{action} needs a namespace")
        args = {"namespace": k8s_name(namespace, "namespace"), "name": name, "kind": kind}
    if action == "k8s.scale":
        if replicas is None:
            raise ToolError("k8s.scale needs replicas (the new replica count)")
        args["replicas"] = bounded(replicas, "replicas", 0, 10_000)
    try:
        return RemediationPlan(
            incident_id="explain",
            playbook_id="explain",
            namespace=namespace,
            target=name,
            risk=RiskLevel(risk),
            steps=[Step(action=action, args=args)],
        )
    except ValidationError as exc:
        raise ToolError(f"bad argument: {exc.errors()[0]['msg']}") from exc


def register(mcp: FastMCP) -> None:
    for tool in (list_playbooks, explain_policy):
        mcp.tool(tool, annotations=READ_ONLY, tags=TAGS)
