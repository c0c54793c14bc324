"""Policy: what may run, within which bounds and budgets, and who must approve it (pure)."""

from aiops.domain.yamlsource import LoadError, SourceError
from aiops.policy.advice import hold_to_evidence
from aiops.policy.evaluate import (
    ActionRecord,
    PdbInfo,
    PolicyContext,
    can_approve,
    evaluate,
    resolve_identity,
)
from aiops.policy.loader import load_policy, parse_policy
from aiops.policy.models import ACTION_KINDS, DEFAULT_PROTECTED, Policy, deny_all


def policy_version(policy: Policy) -> str:
    """Content hash of the policy; recorded in every decision."""
    return policy.version()


__all__ = [
    "ACTION_KINDS",
    "DEFAULT_PROTECTED",
    "ActionRecord",
    "LoadError",
    "PdbInfo",
    "Policy",
    "PolicyContext",
    "SourceError",
    "can_approve",
    "deny_all",
    "evaluate",
    "hold_to_evidence",
    "load_policy",
    "parse_policy",
    "policy_version",
    "resolve_identity",
]
