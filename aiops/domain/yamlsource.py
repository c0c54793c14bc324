"""YAML files read with their line numbers, so every load error names file, line and field.

It lives in domain because playbooks and policy may import only domain, and both need it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


@dataclass(frozen=True)
class SourceError:
    """One problem in one file, at one place, in words a person can act on."""

    file: str
    line: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        what = f" {self.field}:" if self.field else ""
        return f"{where}:{what} {self.reason}"


class LoadError(ValueError):
    """Raised when files are refused; carries every error found, not just the first."""

    def __init__(self, errors: Sequence[SourceError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


Path_ = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """Plain data plus the line (1-based) of every key and list item, by path."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """Line of the deepest part of `path` that exists in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def error(self, path: Sequence[str | int], reason: str) -> SourceError:
        return SourceError(self.file, self.line_of(path), format_path(path), reason)

    def validation_errors(
        self, exc: ValidationError, prefix: Sequence[str | int] = ()
    ) -> list[SourceError]:
        """Map pydantic's error locations onto the file's lines and field names."""
        out: list[SourceError] = []
        for err in exc.errors():
            path = self._data_path(tuple(prefix) + tuple(err["loc"]))
            out.append(self.error(path, _reason(err)))
        return out

    def _data_path(self, loc: Sequence[str | int]) -> list[str | int]:
        # pydantic puts union member names and validator tags into `loc`; keep only the parts that
        # are keys or indexes in the data, plus a trailing missing field name (e.g. a required key).
        node: Any = self.data
        path: list[str | int] = []
        for i, part in enumerate(loc):
            in_dict = isinstance(node, dict) and part in node
            in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            if in_dict or in_list:
                node = node[part]
                path.append(part)
            elif i == len(loc) - 1 and isinstance(part, str) and _IDENT.match(part):
                path.append(part)
        return path


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _reason(err: Any) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        return "unknown field: remove it or check its spelling"
    if kind == "missing":
        return "required field is missing: add it"
    if kind == "value_error":
        # pydantic prefixes messages raised by our validators with "Value error, ".
        return msg.removeprefix("Value error, ")
    got = err.get("input")
    if got is not None and not isinstance(got, dict | list):
        return f"{msg} (got {got!r})"
    return msg


def format_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def read_yaml(path: Path) -> YamlDocument:
    """Parse one YAML document; refuse syntax errors, several documents and duplicate keys."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadError(
            [SourceError(name, None, "", f"cannot read the file: {exc.strerror}")]
        ) from exc
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> YamlDocument:
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        if len(nodes) > 1:
            line = nodes[1].start_mark.line + 1
            raise LoadError([SourceError(name, line, "", "only one YAML document per file")])
        data = yaml.safe_load(text) if nodes else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise LoadError([SourceError(name, line, "", f"invalid YAML: {problem}")]) from exc
    except yaml.YAMLError as exc:
        raise LoadError([SourceError(name, None, "", f"invalid YAML: {exc}")]) from exc
    doc = YamlDocument(name, data)
    errors: list[SourceError] = []
    if nodes:
        doc.lines[()] = nodes[0].start_mark.line + 1
        _walk(nodes[0], (), doc, errors)
    if errors:
        raise LoadError(errors)
    return doc


def _walk(node: yaml.Node, path: Path_, doc: YamlDocument, errors: list[SourceError]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                # PyYAML silently keeps the last duplicate; a rule written twice is a conflict.
                errors.append(
                    SourceError(
                        doc.file,
                        line,
                        format_path((*path, key)),
                        f"duplicate key (first defined on line {seen[key]}): keep only one",
                    )
                )
                continue
            seen[key] = line
            doc.lines[(*path, key)] = line
            _walk(value_node, (*path, key), doc, errors)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), doc, errors)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from `90`, `90s`, `15m`, `1h`, `2d`; used by pydantic validators."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '90s', '15m', '1h'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ValueError(
            f"invalid duration {value!r}: write seconds (90) or a string like '90s', '15m', '1h'"
        )
    if not math.isfinite(seconds):
        # YAML's .inf and .nan are floats: an endless cooldown or timeout breaks the arithmetic
        # of every evaluation that reads it.
        raise ValueError(f"invalid duration {value!r}: it must be a finite number of seconds")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds
