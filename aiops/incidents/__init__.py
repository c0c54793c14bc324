"""The incident client: every way of talking to an IncidentWorkflow (open or join, read, decide),
the rules incidents run on, and the keys that prove who decided."""

from aiops.incidents.client import DecideOutcome, IncidentClient, IncidentSummary, IncidentView
from aiops.incidents.errors import DecisionRefusedError, IncidentError
from aiops.incidents.rules import RulesError, RulesSource, load_rules
from aiops.incidents.signing import DecisionSigner, KeyFileError

__all__ = [
    "DecideOutcome",
    "DecisionRefusedError",
    "DecisionSigner",
    "IncidentClient",
    "IncidentError",
    "IncidentSummary",
    "IncidentView",
    "KeyFileError",
    "RulesError",
    "RulesSource",
    "load_rules",
]
