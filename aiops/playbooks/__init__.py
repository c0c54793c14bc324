"""Playbooks: typed, bounded, allow-listed remediation recipes, matched and rendered purely."""

from aiops.domain.yamlsource import LoadError, SourceError
from aiops.playbooks.loader import PlaybookSet, load_playbook, load_playbooks, parse_playbook
from aiops.playbooks.models import ESCALATE_ID, Playbook
from aiops.playbooks.planner import (
    Observed,
    PlannedRemediation,
    RenderError,
    choose_plan,
    escalation,
    plan_remediation,
)

__all__ = [
    "ESCALATE_ID",
    "LoadError",
    "Observed",
    "PlannedRemediation",
    "Playbook",
    "PlaybookSet",
    "RenderError",
    "SourceError",
    "choose_plan",
    "escalation",
    "load_playbook",
    "load_playbooks",
    "parse_playbook",
    "plan_remediation",
]
