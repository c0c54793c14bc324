"""Pure policy evaluation: RemediationPlan + what the caller observed + Policy -> PolicyDecision.

Deny-by-default: a step runs only if an allow rule names it and nothing else forbids it. Every
check runs (no early exit) so that the decision lists every reason, allowing or denying.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from datetime import timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from aiops.domain import PolicyDecision, RemediationPlan, Step, TimeoutAction
from aiops.policy.identities import Channel
from aiops.policy.models import ACTION_KINDS, RISK_ORDER, Policy, Rule, WindowEffect
from aiops.policy.schedule import cron_active, weekly_active

FAILED_OUTCOMES = frozenset({"failed", "rolled_back"})


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ActionRecord(Frozen):
    """A mutation that ran (or was attempted) on the cluster, from the audit trail."""

    at: AwareDatetime
    action: str
    target: str = Field(description="Step.target form: Deployment/ns/name, Pod/ns/name, Node/name")
    namespace: str | None = None
    incident_id: str = ""
    outcome: Literal["succeeded", "failed", "rolled_back", "pending"] = "succeeded"
    dry_run: bool = False

    @model_validator(mode="after")
    def _namespace_from_target(self) -> ActionRecord:
        # A record that forgot its namespace must still count against that namespace's budget.
        parts = self.target.split("/")
        if self.namespace is None and len(parts) == 3:
            object.__setattr__(self, "namespace", parts[1])
        return self


class PdbInfo(Frozen):
    """An observed PodDisruptionBudget and the targets (Step.target form) whose pods it covers."""

    name: str
    namespace: str
    targets: list[str] = Field(default_factory=list)
    min_available: int | None = Field(default=None, ge=0)
    current_healthy: int | None = Field(default=None, ge=0)
    disruptions_allowed: int | None = Field(default=None, ge=0)


class PolicyContext(Frozen):
    now: AwareDatetime
    history: list[ActionRecord] = Field(default_factory=list)
    current_replicas: dict[str, int] = Field(default_factory=dict, description="by target")
    pdbs: list[PdbInfo] = Field(default_factory=list)
    labels: dict[str, dict[str, str]] = Field(default_factory=dict, description="by target")
    kill_switch: bool = False


def step_kind(step: Step) -> str:
    return str(step.args.get("kind", ACTION_KINDS.get(step.action, "Deployment")))


def step_namespace(step: Step) -> str | None:
    ns = step.args.get("namespace")
    return str(ns) if ns is not None and step_kind(step) != "Node" else None


def evaluate(plan: RemediationPlan, context: PolicyContext, policy: Policy) -> PolicyDecision:
    version = policy.version()
    if not plan.steps and not plan.compensation:
        what = "the plan escalates to a human" if plan.is_escalation else "the plan has no steps"
        return PolicyDecision(
            allowed=True,
            requires_approval=False,
            approvals_required=0,
            approval_timeout_s=policy.approvals.timeout,
            on_timeout=policy.approvals.on_timeout,
            reasons=[f"nothing would change in the cluster: {what}"],
            policy_version=version,
        )

    denials: list[str] = []
    notes: list[str] = []
    if plan.is_escalation:
        denials.append("an 'escalate' plan must not carry steps: it hands over to a human")
    if policy.kill_switch or context.kill_switch:
        where = "in the policy" if policy.kill_switch else "by an operator"
        denials.append(f"the kill switch is on ({where}): no remediation runs")

    for label, steps in (("step", plan.steps), ("compensation step", plan.compensation)):
        for i, step in enumerate(steps, start=1):
            prefix = f"{label} {i} ({step.action} on {step.target})"
            _check_step(prefix, step, context, policy, denials, notes)

    _check_budgets(plan, context, policy, denials, notes)
    _check_history(plan, context, policy, denials)
    window_wants_approval = _check_windows(plan, context, policy, denials)

    if denials:
        return PolicyDecision(
            allowed=False,
            requires_approval=False,
            approvals_required=0,
            approval_timeout_s=policy.approvals.timeout,
            on_timeout=policy.approvals.on_timeout,
            reasons=[*denials, *notes],
            policy_version=version,
        )
    return _approval(plan, policy, version, window_wants_approval, notes)


def _check_step(
    prefix: str,
    step: Step,
    context: PolicyContext,
    policy: Policy,
    denials: list[str],
    notes: list[str],
) -> None:
    expected_kind = ACTION_KINDS.get(step.action)
    if expected_kind is None:
        denials.append(f"{prefix}: '{step.action}' is not an allow-listed action")
        return
    kind = step_kind(step)
    if kind != expected_kind:
        denials.append(f"{prefix}: {step.action} acts on {expected_kind}, not {kind}")
        return
    namespace = step_namespace(step)
    # The target the policy judges must be the object the executor acts on: one way to name it.
    if expected_kind == "Node":
        if not step.args.get("node") or "name" in step.args or "namespace" in step.args:
            denials.append(f"{prefix}: a node step names its node as 'node' and nothing else")
            return
    elif not namespace or not step.args.get("name"):
        denials.append(f"{prefix}: the step must name both its namespace and its name")
        return
    if policy.is_protected(namespace):
        denials.append(f"{prefix}: namespace '{namespace}' is protected; nothing touches it")
    for item in policy.unprotect:
        if item.namespace == namespace and not policy.is_protected(namespace):
            notes.append(
                f"{prefix}: namespace '{namespace}' is protected by default but was unprotected: "
                f"{item.reason}"
            )
    labels = context.labels.get(step.target)

    for rule in policy.deny:
        if _rule_matches(rule, step.action, kind, namespace, labels):
            denials.append(f"{prefix}: forbidden by deny rule '{rule.name}'")

    allowed_by: str | None = None
    near_misses: list[str] = []
    for rule in policy.allow:
        if step.action not in rule.actions or kind not in rule.effective_kinds():
            continue
        if not rule.covers_namespace(namespace):
            continue
        if rule.selector is not None:
            if labels is None:
                near_misses.append(f"rule '{rule.name}' needs the target's labels, none given")
                continue
            if not rule.selector.matches(labels):
                near_misses.append(f"rule '{rule.name}' needs labels {rule.selector.describe()}")
                continue
        allowed_by = rule.name
        break
    if allowed_by is None:
        where = f" in namespace '{namespace}'" if namespace else ""
        extra = f" ({'; '.join(near_misses)})" if near_misses else ""
        denials.append(f"{prefix}: no allow rule permits {step.action} on {kind}{where}{extra}")
    else:
        notes.append(f"{prefix}: allowed by rule '{allowed_by}'")

    if step.action == "k8s.scale":
        _check_scale(prefix, step, context, policy, denials)
    elif step.action in ("k8s.delete_pod", "k8s.drain") and policy.bounds.respect_pdb:
        for pdb in _pdbs_for(step.target, context):
            if pdb.disruptions_allowed == 0:
                denials.append(
                    f"{prefix}: PodDisruptionBudget {pdb.namespace}/{pdb.name} allows no "
                    "disruption now"
                )
            elif (
                step.action == "k8s.delete_pod"
                and pdb.min_available is not None
                and pdb.current_healthy is not None
                and pdb.current_healthy - 1 < pdb.min_available
            ):
                denials.append(
                    f"{prefix}: deleting the pod leaves {pdb.current_healthy - 1} healthy, below "
                    f"PodDisruptionBudget {pdb.namespace}/{pdb.name} minAvailable "
                    f"{pdb.min_available}"
                )


def _pdbs_for(target: str, context: PolicyContext) -> list[PdbInfo]:
    return [p for p in context.pdbs if target in p.targets]


def _check_scale(
    prefix: str, step: Step, context: PolicyContext, policy: Policy, denials: list[str]
) -> None:
    bounds = policy.bounds.scale
    replicas = step.args.get("replicas")
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        denials.append(f"{prefix}: replicas must be a whole number, got {replicas!r}")
        return
    if replicas > bounds.ceiling:
        denials.append(f"{prefix}: {replicas} replicas is above the ceiling of {bounds.ceiling}")
    if replicas < bounds.min_replicas:
        denials.append(
            f"{prefix}: {replicas} replicas is below the minimum of {bounds.min_replicas}"
        )
    current = context.current_replicas.get(step.target)
    if current is None:
        denials.append(
            f"{prefix}: the current replica count is unknown, so the x{bounds.max_factor:g} "
            "bound cannot be checked"
        )
    elif replicas > current * bounds.max_factor:
        denials.append(
            f"{prefix}: {current} -> {replicas} replicas is more than x{bounds.max_factor:g}"
        )
    if policy.bounds.respect_pdb:
        for pdb in _pdbs_for(step.target, context):
            if pdb.min_available is not None and replicas < pdb.min_available:
                denials.append(
                    f"{prefix}: {replicas} replicas is below PodDisruptionBudget "
                    f"{pdb.namespace}/{pdb.name} minAvailable {pdb.min_available}"
                )


def _rule_matches(
    rule: Rule, action: str, kind: str, namespace: str | None, labels: dict[str, str] | None
) -> bool:
    if action not in rule.actions or kind not in rule.effective_kinds():
        return False
    if not rule.covers_namespace(namespace):
        return False
    # A deny rule with a selector applies when the labels match, or are unknown (fail closed).
    return rule.selector is None or labels is None or rule.selector.matches(labels)


def _recent(context: PolicyContext, seconds: float) -> list[ActionRecord]:
    # An action dated after `now` happened: another worker's clock runs ahead. It counts as
    # recent (fail closed), not as an action that has not happened yet.
    since = context.now - timedelta(seconds=seconds)
    return [r for r in context.history if not r.dry_run and since <= r.at]


def _check_budgets(
    plan: RemediationPlan,
    context: PolicyContext,
    policy: Policy,
    denials: list[str],
    notes: list[str],
) -> None:
    budgets = policy.budgets
    recent = _recent(context, 3600)
    adds = len(plan.steps)
    used = len(recent)
    if used + adds > budgets.per_cluster_per_hour:
        denials.append(
            f"cluster budget: {used} mutations in the last hour, this plan adds {adds}, the "
            f"budget is {budgets.per_cluster_per_hour} per hour"
        )
    else:
        notes.append(f"cluster budget: {used} + {adds} of {budgets.per_cluster_per_hour} per hour")
    per_ns = Counter(step_namespace(s) for s in plan.steps)
    by_ns = Counter(r.namespace for r in recent)
    for ns, count in sorted(per_ns.items(), key=lambda kv: str(kv[0])):
        if ns is None:
            continue
        if by_ns[ns] + count > budgets.per_namespace_per_hour:
            denials.append(
                f"namespace budget: {by_ns[ns]} mutations in '{ns}' in the last hour, this plan "
                f"adds {count}, the budget is {budgets.per_namespace_per_hour} per hour"
            )
        else:
            notes.append(
                f"namespace budget for '{ns}': {by_ns[ns]} + {count} of "
                f"{budgets.per_namespace_per_hour} per hour"
            )


def _check_history(
    plan: RemediationPlan, context: PolicyContext, policy: Policy, denials: list[str]
) -> None:
    budgets = policy.budgets
    targets = sorted({s.target for s in plan.steps})
    cooling = _recent(context, budgets.cooldown_per_target)
    failures = _recent(context, budgets.failure_window)
    for target in targets:
        # The incident's own earlier steps (e.g. a retried plan) do not start a cooldown on it.
        last = [r for r in cooling if r.target == target and r.incident_id != plan.incident_id]
        if last:
            newest = max(r.at for r in last)
            ago = max((context.now - newest).total_seconds(), 0.0)
            denials.append(
                f"cooldown: {target} was changed {_human(ago)} ago by {last[-1].action}; the "
                f"cooldown per target is {_human(budgets.cooldown_per_target)}"
            )
        failed = [r for r in failures if r.target == target and r.outcome in FAILED_OUTCOMES]
        if len(failed) >= budgets.max_failures_per_target:
            denials.append(
                f"anti-flapping: {len(failed)} failed remediations on {target} in the last "
                f"{_human(budgets.failure_window)}; stop and escalate to a human"
            )


def _check_windows(
    plan: RemediationPlan, context: PolicyContext, policy: Policy, denials: list[str]
) -> list[str]:
    wants_approval: list[str] = []
    namespaces = {step_namespace(s) for s in plan.steps}
    for window in policy.maintenance_windows:
        if window.namespaces is not None and not any(
            ns is not None and any(fnmatch.fnmatchcase(ns, p) for p in window.namespaces)
            for ns in namespaces
        ):
            continue
        if window.cron is not None and window.duration is not None:
            active = cron_active(window.cron, window.duration, context.now)
        else:
            active = weekly_active(
                window.days or [], window.start or "00:00", window.end or "24:00", context.now
            )
        if not active:
            continue
        what = f"maintenance window '{window.name}' ({window.describe()}) is active"
        if window.effect is WindowEffect.DENY:
            denials.append(f"{what}: automatic remediation is paused")
        else:
            wants_approval.append(f"{what}: a human must approve")
    return wants_approval


def _approval(
    plan: RemediationPlan,
    policy: Policy,
    version: str,
    window_reasons: list[str],
    notes: list[str],
) -> PolicyDecision:
    appr = policy.approvals
    actions = {s.action for s in plan.steps}
    namespaces = {ns for s in plan.steps if (ns := step_namespace(s)) is not None}
    matched = []
    for rule in appr.rules:
        if (
            rule.risk_at_least is not None
            and RISK_ORDER[plan.risk] < RISK_ORDER[rule.risk_at_least]
        ):
            continue
        if rule.risks is not None and plan.risk not in rule.risks:
            continue
        if rule.actions is not None and not actions & set(rule.actions):
            continue
        if rule.namespaces is not None and not any(
            fnmatch.fnmatchcase(ns, p) for ns in namespaces for p in rule.namespaces
        ):
            continue
        matched.append(rule)

    reasons = [*notes, *window_reasons]
    if not matched and not window_reasons:
        reasons.append(
            f"no approval rule matches this {plan.risk.value}-risk plan: it runs without a human"
        )
        return PolicyDecision(
            allowed=True,
            requires_approval=False,
            approvals_required=0,
            approval_timeout_s=appr.timeout,
            on_timeout=appr.on_timeout,
            reasons=reasons,
            policy_version=version,
        )

    known = set(appr.identities)
    if matched:
        # Several rules: the strictest wins, and an approver must be allowed by every one.
        required = max(r.approvals for r in matched)
        people = set.intersection(*(appr.expand(r.approvers) & known for r in matched))
        timeout = min(r.timeout or appr.timeout for r in matched)
        escalate = any((r.on_timeout or appr.on_timeout) is TimeoutAction.ESCALATE for r in matched)
        for r in matched:
            reasons.append(
                f"approval rule '{r.name}' applies: {r.approvals} approval(s) from "
                f"{', '.join(r.approvers)}"
            )
    else:
        required = 1
        people = appr.expand(appr.default_approvers) & known
        timeout = appr.timeout
        escalate = appr.on_timeout is TimeoutAction.ESCALATE
    on_timeout = TimeoutAction.ESCALATE if escalate else TimeoutAction.REJECT
    if len(people) < required:
        reasons.append(
            f"needs {required} distinct approver(s) but only {len(people)} may approve "
            f"({', '.join(sorted(people)) or 'nobody'}): fix the approval rules"
        )
        return PolicyDecision(
            allowed=False,
            requires_approval=False,
            approvals_required=0,
            approval_timeout_s=timeout,
            on_timeout=on_timeout,
            reasons=reasons,
            policy_version=version,
        )
    reasons.append(
        f"needs {required} approval(s) from distinct people among "
        f"{', '.join(sorted(people))} within {_human(timeout)}; then {on_timeout.value}"
    )
    return PolicyDecision(
        allowed=True,
        requires_approval=True,
        approvals_required=required,
        approvers=sorted(people),
        approval_timeout_s=timeout,
        on_timeout=on_timeout,
        reasons=reasons,
        policy_version=version,
    )


def can_approve(identity: str, decision: PolicyDecision) -> bool:
    """May this identity (already resolved from its channel) approve this decision?"""
    return decision.allowed and decision.requires_approval and identity in decision.approvers


def resolve_identity(policy: Policy, channel: Channel, principal: str) -> str | None:
    """Map a Slack user id, an MCP token's principal or a CLI key to a policy identity."""
    for name, who in policy.approvals.identities.items():
        if who.knows_key(principal) if channel == "cli" else principal in who.names(channel):
            return name
    return None


def _human(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"
