"""Label and field selectors with the apiserver's syntax and semantics.

Label selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, comma-separated
(all must hold). Also the structured form of `spec.selector` (matchLabels/matchExpressions).
Field selectors: `path=value`, `path==value`, `path!=value`, over a per-resource allow-list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from aiops_lab.cluster.errors import BadRequestError

LabelMatcher = Callable[[Mapping[str, str]], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_OP = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ_OP = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses (set values use commas too)."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_label_selector(selector: str | None) -> LabelMatcher:
    """Compile a label selector string; raises BadRequestError naming the bad requirement."""
    if not selector or not selector.strip():
        return lambda labels: True
    checks: list[LabelMatcher] = []
    for requirement in _split_top_level(selector):
        checks.append(_requirement(requirement, selector))
    return lambda labels: all(check(labels) for check in checks)


def _requirement(req: str, selector: str) -> LabelMatcher:
    m = _SET_OP.match(req)
    if m:
        key, op = m.group(1), m.group(3)
        values = {v.strip() for v in m.group(4).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    m = _EQ_OP.match(req)
    if m:
        key, op, value = m.group(1), m.group(3), m.group(4)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: key in labels and labels[key] == value
    m = _EXISTS.match(req)
    if m:
        negate, key = m.group(1) == "!", m.group(2)
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise BadRequestError(
        f"unable to parse requirement {req.strip()!r} in labelSelector {selector!r}: expected "
        "key=value, key!=value, key in (a,b), key notin (a,b), key or !key"
    )


def selector_to_matcher(selector: Mapping[str, Any] | None) -> LabelMatcher:
    """A structured LabelSelector (matchLabels + matchExpressions); empty selects everything."""
    if not selector:
        return lambda labels: True
    match_labels: dict[str, str] = dict(selector.get("matchLabels") or {})
    exprs: list[Mapping[str, Any]] = list(selector.get("matchExpressions") or [])

    def matches(labels: Mapping[str, str]) -> bool:
        for key, value in match_labels.items():
            if labels.get(key) != value:
                return False
        for expr in exprs:
            key, op = expr.get("key", ""), expr.get("operator", "")
            values = set(expr.get("values") or [])
            if op == "In" and labels.get(key) not in values:
                return False
            if op == "NotIn" and labels.get(key) in values:
                return False
            if op == "Exists" and key not in labels:
                return False
            if op == "DoesNotExist" and key in labels:
                return False
        return True

    return matches


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """The string form (as in Scale.status.selector) of a structured selector."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        key = expr.get("key")
        values = ",".join(sorted(expr.get("values") or []))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


ObjectMatcher = Callable[[Mapping[str, Any]], bool]


def _lookup(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def _field_check(path: str, value: str, negate: bool) -> ObjectMatcher:
    if negate:
        return lambda obj: _lookup(obj, path) != value
    return lambda obj: _lookup(obj, path) == value


def parse_field_selector(selector: str | None, allowed: frozenset[str], kind: str) -> ObjectMatcher:
    """Compile a field selector over the fields the apiserver supports for this kind."""
    if not selector or not selector.strip():
        return lambda obj: True
    checks: list[ObjectMatcher] = []
    for req in _split_top_level(selector):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", req)
        if not m:
            raise BadRequestError(
                f"invalid field selector requirement {req.strip()!r}: expected field=value or "
                "field!=value"
            )
        path, op, value = m.group(1), m.group(2), m.group(3)
        if path not in allowed:
            raise BadRequestError(
                f'field label not supported: "{path}" for {kind} (supported: '
                f"{', '.join(sorted(allowed))})"
            )
        checks.append(_field_check(path, value, negate=op == "!="))
    return lambda obj: all(check(obj) for check in checks)
