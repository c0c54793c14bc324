"""The approval gate of an incident: the pending request, the decisions that count, and the one
validator every front door meets.

Plain deterministic state that IncidentWorkflow holds and its `decide` handlers call; no I/O.
A decision counts only with proof of who made it (aiops.policy.proof), checked against the rules
snapshot the incident started with, and people are counted, not names: a person approves once,
whatever channel or name they use.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from aiops.domain import ApprovalRequest, DecideResult, Decision, IncidentStatus
    from aiops.policy.models import Policy
    from aiops.policy.proof import RefusedError, check_proof, person_of, vouched_by


def refuse(kind: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


class ApprovalGate:
    def __init__(self) -> None:
        self.request: ApprovalRequest | None = None
        self.approved_by: list[str] = []  # people, in the order they approved
        self.decisions: list[Decision] = []  # as counted: `identity` is the person
        self.nonces: set[str] = set()
        self.rejected = False
        self.rejected_by = ""

    @property
    def needed(self) -> int:
        return max(self.request.decision.approvals_required if self.request else 1, 1)

    def enough(self) -> bool:
        return len(self.approved_by) >= self.needed

    def validate(
        self,
        decision: Decision,
        *,
        status: IncidentStatus,
        policy: Policy,
        incident_id: str,
        run_id: str,
        now: datetime,
    ) -> None:
        """Refuse, before anything is written to history, every decision that must not
        count."""
        request = self.request
        if request is None or status is not IncidentStatus.AWAITING_APPROVAL:
            raise refuse(
                "NotAwaitingApproval",
                f"incident is {status.value}, not awaiting approval; nothing to decide",
            )
        if self.rejected:
            raise refuse(
                "NotAwaitingApproval",
                f"the plan was rejected by {self.rejected_by}; nothing to decide",
            )
        if now >= request.expires_at:
            raise refuse(
                "ApprovalExpired",
                f"the approval request expired at {request.expires_at.isoformat()}",
            )
        try:
            person, _ = check_proof(
                decision,
                policy,
                incident_id=incident_id,
                run_id=run_id,
                now=now,
                used_nonces=self.nonces,
            )
        except RefusedError as exc:
            raise refuse(exc.kind, exc.message) from None
        self._check_counts(decision, person)

    def _check_counts(self, decision: Decision, person: str) -> None:
        request = self.request
        assert request is not None
        if decision.plan_hash != request.plan_hash:
            raise refuse(
                "PlanHashMismatch",
                f"plan hash {decision.plan_hash} does not match the pending plan "
                f"{request.plan_hash}; re-read the incident and decide on the current plan",
            )
        if person not in request.decision.approvers:
            raise refuse(
                "NotAnApprover",
                f"{person} may not decide on this incident; the policy allows: "
                f"{', '.join(request.decision.approvers) or 'nobody'}",
            )
        if decision.approve and person in self.approved_by:
            raise refuse(
                "AlreadyApproved", f"{person} has already approved; another approver is needed"
            )
        if decision.nonce and decision.nonce in self.nonces:
            raise refuse("ReplayedDecision", "this signed decision was already counted")

    def record(self, decision: Decision, policy: Policy) -> tuple[str, str]:
        """Count an accepted decision; returns (person, audit line). Two decisions accepted in
        the same workflow task are checked again here, since both passed the validator before
        either was counted."""
        person = person_of(decision, policy) or decision.identity
        if decision.signature:
            self._check_counts(decision, person)
            self.nonces.add(decision.nonce)
        self.decisions.append(decision.model_copy(update={"identity": person}))
        via = f"via {decision.channel}"
        if decision.signature:
            via += f" ({vouched_by(decision, policy)})"
        if decision.approve:
            self.approved_by.append(person)
            return person, f"approved plan {decision.plan_hash} {via}"
        self.rejected = True
        self.rejected_by = person
        return person, f"rejected plan {decision.plan_hash} {via}: {decision.reason}"

    def result(self, status: IncidentStatus, person: str) -> DecideResult:
        return DecideResult(
            accepted=True,
            status=status,
            approved_by=list(self.approved_by),
            approvals_needed=max(self.needed - len(self.approved_by), 0),
            decided_by=person,
            rejected_by=self.rejected_by,
        )
