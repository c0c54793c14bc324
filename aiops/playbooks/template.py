"""The playbook template language: `{{ dotted.field }}` references and nothing else.

No expressions, filters, calls or attribute access on objects: a template can only copy a value
the renderer put in its context, so a playbook file can never run code. A string that is exactly
one reference keeps the value's type (`"{{ params.replicas }}"` renders to the int 3); a reference
inside a longer string is substituted as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REF = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PATH = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_WHOLE = re.compile(r"^\s*\{\{(.*?)\}\}\s*$", re.DOTALL)


class TemplateError(ValueError):
    """A template is malformed, or names a field that does not exist."""


class MissingValueError(TemplateError):
    """A valid reference whose value is not known for this incident (e.g. no pod observed)."""


def references(text: str) -> list[str]:
    """The dotted fields a template names, in order; refuses anything that is not a reference."""
    refs: list[str] = []
    for match in _REF.finditer(text):
        inner = match.group(1).strip()
        if not _PATH.fullmatch(inner):
            raise TemplateError(
                f"template '{{{{{match.group(1)}}}}}' is not a field reference: only forms like "
                "{{ target.name }} or {{ params.replicas }} are allowed (no expressions, filters "
                "or calls)"
            )
        refs.append(inner)
    rest = _REF.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise TemplateError(f"unbalanced template braces in {text!r}: write {{{{ field.name }}}}")
    return refs


def all_references(value: Any) -> list[str]:
    """Every reference inside a string, list or mapping (keys are never templated)."""
    if isinstance(value, str):
        return references(value)
    if isinstance(value, list):
        return [r for item in value for r in all_references(item)]
    if isinstance(value, dict):
        return [r for item in value.values() for r in all_references(item)]
    return []


def lookup(context: Mapping[str, Any], path: str) -> Any:
    node: Any = context
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise TemplateError(f"unknown template field '{path}'")
        node = node[part]
    if node is None:
        raise MissingValueError(f"'{path}' is not known for this incident")
    return node


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render strings, lists and mappings; other values pass through unchanged."""
    if isinstance(value, str):
        references(value)  # validates the whole string before substituting any of it
        whole = _WHOLE.match(value)
        if whole and value.count("{{") == 1:
            return lookup(context, whole.group(1).strip())
        return _REF.sub(lambda m: _text(lookup(context, m.group(1).strip())), value)
    if isinstance(value, list):
        return [render(item, context) for item in value]
    if isinstance(value, dict):
        return {key: render(item, context) for key, item in value.items()}
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
