"""`aiops policy explain`: evaluate one plan against a policy and print every reason."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from aiops.domain import RemediationPlan, RiskLevel, Step
from aiops.domain.yamlsource import LoadError
from aiops.policy.evaluate import ActionRecord, PdbInfo, PolicyContext, can_approve, evaluate
from aiops.policy.loader import load_policy
from aiops.policy.models import ACTION_KINDS

EXIT_ALLOWED, EXIT_DENIED, EXIT_BAD_INPUT = 0, 1, 2


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Explain the policy decision for one action (or a plan file). Exit 0 when allowed, "
        "1 when denied, 2 on bad input."
    )
    p.add_argument(
        "--policy", type=Path, default=Path("policies"), help="file, or dir with default.yaml"
    )
    p.add_argument("--plan", type=Path, help="a RemediationPlan as JSON (instead of --action ...)")
    p.add_argument("--action", choices=sorted(ACTION_KINDS))
    p.add_argument("--namespace", help="namespace of the target (not for node actions)")
    p.add_argument("--name", help="Deployment, Pod or Node name")
    p.add_argument("--kind", choices=["Deployment", "Pod", "Node"], help="default: the action's")
    p.add_argument("--replicas", type=int, help="k8s.scale: the new replica count")
    p.add_argument("--risk", choices=[r.value for r in RiskLevel], default="low")
    p.add_argument("--incident", default="explain", help="incident id of the plan")
    p.add_argument("--current-replicas", type=int, help="observed replicas of the target")
    p.add_argument("--label", action="append", default=[], metavar="K=V", help="target label")
    p.add_argument("--pdb-min-available", type=int, help="the target's PDB minAvailable")
    p.add_argument("--pdb-healthy", type=int, help="the target's PDB currentHealthy")
    p.add_argument(
        "--pdb-disruptions-allowed", type=int, help="the target's PDB disruptionsAllowed"
    )
    p.add_argument("--history", type=Path, help="JSON list of recent actions (ActionRecord)")
    p.add_argument("--kill-switch", action="store_true", help="evaluate as if the switch were on")
    p.add_argument("--now", help="ISO time (UTC), default now")
    p.add_argument("--identity", help="also say whether this identity may approve")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")


def _plan(args: argparse.Namespace) -> RemediationPlan:
    if args.plan is not None:
        return RemediationPlan.model_validate_json(args.plan.read_text(encoding="utf-8"))
    if not args.action or not args.name:
        raise ValueError("give --plan FILE, or --action and --name (and --namespace)")
    kind = args.kind or ACTION_KINDS[args.action]
    if kind == "Node":
        step_args: dict[str, object] = {"node": args.name, "kind": kind}
    else:
        if not args.namespace:
            raise ValueError(f"{args.action} needs --namespace")
        step_args = {"namespace": args.namespace, "name": args.name, "kind": kind}
    if args.action == "k8s.scale":
        if args.replicas is None:
            raise ValueError("k8s.scale needs --replicas")
        step_args["replicas"] = args.replicas
    return RemediationPlan(
        incident_id=args.incident,
        playbook_id="explain",
        namespace=args.namespace,
        target=args.name,
        risk=RiskLevel(args.risk),
        steps=[Step(action=args.action, args=step_args)],
    )


def _context(args: argparse.Namespace, plan: RemediationPlan) -> PolicyContext:
    target = plan.steps[0].target if plan.steps else ""
    labels: dict[str, str] = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--label {item!r}: write KEY=VALUE")
        labels[key] = value
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    history: list[ActionRecord] = []
    if args.history is not None:
        adapter = TypeAdapter(list[ActionRecord])
        history = adapter.validate_json(args.history.read_text(encoding="utf-8"))
    pdbs = []
    pdb_given = (args.pdb_min_available, args.pdb_healthy, args.pdb_disruptions_allowed)
    if any(v is not None for v in pdb_given):
        pdbs.append(
            PdbInfo(
                name="given",
                namespace=args.namespace or "",
                targets=[target],
                min_available=args.pdb_min_available,
                current_healthy=args.pdb_healthy,
                disruptions_allowed=args.pdb_disruptions_allowed,
            )
        )
    return PolicyContext(
        now=now,
        history=history,
        current_replicas={target: args.current_replicas}
        if args.current_replicas is not None
        else {},
        pdbs=pdbs,
        labels={target: labels} if args.label else {},
        kill_switch=args.kill_switch,
    )


def run(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.policy)
    except LoadError as exc:
        for error in exc.errors:
            print(error)
        return EXIT_BAD_INPUT
    try:
        plan = _plan(args)
        context = _context(args, plan)
    except (ValueError, ValidationError, OSError) as exc:
        print(f"bad input: {exc}")
        return EXIT_BAD_INPUT
    decision = evaluate(plan, context, policy)
    if args.json:
        print(json.dumps(decision.model_dump(mode="json"), indent=2))
    else:
        print(f"policy: {args.policy} (version {decision.policy_version})")
        for step in plan.steps:
            extra = " ".join(f"{k}={v}" for k, v in step.args.items() if k == "replicas")
            print(f"plan: {step.action} {step.target} {extra}".rstrip() + f" (risk {plan.risk})")
        if not decision.allowed:
            verdict = "DENIED"
        elif decision.requires_approval:
            verdict = (
                f"ALLOWED after {decision.approvals_required} approval(s) from "
                f"{', '.join(decision.approvers)} within {decision.approval_timeout_s:g}s "
                f"(on timeout: {decision.on_timeout.value})"
            )
        else:
            verdict = "ALLOWED without approval"
        print(f"decision: {verdict}")
        print("reasons:")
        for reason in decision.reasons:
            print(f"  - {reason}")
        if args.identity:
            may = can_approve(args.identity, decision)
            print(f"{args.identity} may approve: {'yes' if may else 'no'}")
    return EXIT_ALLOWED if decision.allowed else EXIT_DENIED
