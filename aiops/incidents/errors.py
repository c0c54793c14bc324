"""What can go wrong talking to an incident, as exceptions a front door can phrase for people.

A refused decision arrives as the `decide` validator's ApplicationError; its `type` names the
reason and maps to one class here, so callers never parse messages.
"""

from __future__ import annotations


class IncidentError(Exception):
    """The incident cannot be read or decided; the message says why and what to do."""


class IncidentNotFoundError(IncidentError):
    pass


class IncidentClosedError(IncidentError):
    pass


class NothingToDecideError(IncidentError):
    """The incident is running but no plan awaits a decision."""


class TemporalError(IncidentError):
    """Temporal did not answer; the message carries its reason."""


class DecisionRefusedError(IncidentError):
    """The workflow refused the decision; nothing was written to its history."""

    kind = "DecisionRefused"


class NotAwaitingApprovalError(DecisionRefusedError):
    kind = "NotAwaitingApproval"


class ApprovalExpiredError(DecisionRefusedError):
    kind = "ApprovalExpired"


class PlanHashMismatchError(DecisionRefusedError):
    kind = "PlanHashMismatch"


class NotAnApproverError(DecisionRefusedError):
    kind = "NotAnApprover"


class AlreadyApprovedError(DecisionRefusedError):
    kind = "AlreadyApproved"


class UnsignedDecisionError(DecisionRefusedError):
    kind = "UnsignedDecision"


class ForgedDecisionError(DecisionRefusedError):
    kind = "ForgedDecision"


class UnknownFrontDoorError(DecisionRefusedError):
    kind = "UnknownFrontDoor"


class WrongIncidentError(DecisionRefusedError):
    kind = "WrongIncident"


class StaleDecisionError(DecisionRefusedError):
    kind = "StaleDecision"


class ReplayedDecisionError(DecisionRefusedError):
    kind = "ReplayedDecision"


class NotMappedError(DecisionRefusedError):
    kind = "NotMapped"


REFUSALS: dict[str, type[DecisionRefusedError]] = {
    cls.kind: cls
    for cls in (
        NotAwaitingApprovalError,
        ApprovalExpiredError,
        PlanHashMismatchError,
        NotAnApproverError,
        AlreadyApprovedError,
        UnsignedDecisionError,
        ForgedDecisionError,
        UnknownFrontDoorError,
        WrongIncidentError,
        StaleDecisionError,
        ReplayedDecisionError,
        NotMappedError,
    )
}


def refusal(kind: str | None, message: str) -> DecisionRefusedError:
    return REFUSALS.get(kind or "", DecisionRefusedError)(f"refused: {message}")
