"""Load a policy from YAML, refusing every error and every conflict with file, line and reason."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from aiops.domain.yamlsource import LoadError, SourceError, YamlDocument, parse_yaml, read_yaml
from aiops.policy.models import Policy

DEFAULT_FILE = "default.yaml"


def policy_from_document(doc: YamlDocument) -> Policy:
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise LoadError([doc.error((), "a policy is a mapping (allow, approvals, budgets, ...)")])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise LoadError(doc.validation_errors(exc)) from exc
    conflicts = [doc.error(path, reason) for path, reason in policy.conflicts()]
    if conflicts:
        raise LoadError(conflicts)
    return policy


def load_policy(path: Path) -> Policy:
    """A policy file, or `default.yaml` in a directory. An empty file denies everything; a
    missing file is an error (the daemon must not start on a policy it did not read)."""
    if path.is_dir():
        path = path / DEFAULT_FILE
    if not path.exists():
        raise LoadError(
            [SourceError(str(path), None, "", "policy file not found: nothing would be allowed")]
        )
    return policy_from_document(read_yaml(path))


def parse_policy(text: str, name: str = "<string>") -> Policy:
    return policy_from_document(parse_yaml(text, name))
