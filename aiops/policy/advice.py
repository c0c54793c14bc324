"""The model advises; it never lowers the bar. A plan chosen because the model re-ordered the
hypotheses needs at least the human approval that the plan of the deterministic ranking (the
baseline) needed:

- the baseline needed approvals: the plan needs as many, from people both plans' rules allow
  (as when several approval rules match one plan), within the shorter timeout;
- the baseline would not have run at all (an escalation, or denied): a person decides on the
  model's plan, from the policy's default approvers unless its own rules name others;
- the baseline ran without a human: the plan's own decision stands.

A plan the policy denies stays denied, and an escalation stays an escalation.
"""

from __future__ import annotations

from aiops.domain import PolicyDecision, RemediationPlan, TimeoutAction
from aiops.policy.evaluate import PolicyContext, evaluate
from aiops.policy.models import Policy


def hold_to_evidence(
    decision: PolicyDecision,
    plan: RemediationPlan,
    baseline: RemediationPlan,
    context: PolicyContext,
    policy: Policy,
) -> PolicyDecision:
    """`decision` (for `plan`), raised to what `baseline` required; see the module docstring."""
    if not decision.allowed or not plan.steps:
        return decision
    floor = evaluate(baseline, context, policy)
    chose = (
        f"the model's re-ranking chose {plan.playbook_id} on {plan.target} over the "
        f"deterministic plan {baseline.playbook_id} on {baseline.target or 'nothing'}"
    )
    appr = policy.approvals
    if baseline.is_escalation or not baseline.steps or not floor.allowed:
        why = "an escalation" if baseline.is_escalation or not baseline.steps else "denied"
        people = (
            set(decision.approvers)
            if decision.requires_approval
            else appr.expand(appr.default_approvers) & set(appr.identities)
        )
        required = max(decision.approvals_required if decision.requires_approval else 0, 1)
        timeout = decision.approval_timeout_s if decision.requires_approval else appr.timeout
        on_timeout = decision.on_timeout if decision.requires_approval else appr.on_timeout
        reason = f"{chose}, which was {why}: a person decides"
    elif floor.requires_approval:
        # The plan's own approval terms count only where it needs approval itself.
        both = [decision, floor] if decision.requires_approval else [floor]
        people = set.intersection(*(set(d.approvers) for d in both))
        required = max(d.approvals_required for d in both)
        timeout = min(d.approval_timeout_s for d in both)
        escalate = any(d.on_timeout is TimeoutAction.ESCALATE for d in both)
        on_timeout = TimeoutAction.ESCALATE if escalate else TimeoutAction.REJECT
        reason = f"{chose}, which needed {floor.approvals_required} approval(s): so does this plan"
    else:
        return decision
    if len(people) < required:
        return decision.model_copy(
            update={
                "allowed": False,
                "requires_approval": False,
                "approvals_required": 0,
                "approvers": [],
                "reasons": [
                    *decision.reasons,
                    f"{reason}, but only {len(people)} person(s) may approve both plans "
                    f"({', '.join(sorted(people)) or 'nobody'}): fix the approval rules",
                ],
            }
        )
    return decision.model_copy(
        update={
            "requires_approval": True,
            "approvals_required": required,
            "approvers": sorted(people),
            "approval_timeout_s": timeout,
            "on_timeout": on_timeout,
            "reasons": [
                *decision.reasons,
                f"{reason}: needs {required} approval(s) from distinct people among "
                f"{', '.join(sorted(people))}",
            ],
        }
    )
