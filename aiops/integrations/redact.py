"""Remove secrets from text before it leaves the process (to a model, a log, a chat).

Built-in patterns: bearer tokens, Authorization headers, passwords and API keys in key=value or
JSON form, JWTs, AWS access keys, private key blocks; plus the operator's own regular expressions
from settings (`llm.redact_patterns`). What matched is replaced by `[REDACTED]`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"

_KEYS = (
    r"pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
    r"credentials?"
)

BUILTIN: tuple[tuple[str, str], ...] = (
    ("private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    ("bearer", r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    ("aws key", r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
    ("openai-style key", r"\bsk-[A-Za-z0-9_-]{16,}"),
    ("url credentials", r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
    # key=value, key: value, "key": "value"
    (
        "key/value",
        rf"(?i)([\"']?[a-z0-9_.-]*(?:{_KEYS})[a-z0-9_.-]*[\"']?\s*[:=]\s*)"
        r"(?:\"[^\"]*\"|'[^']*'|[^\s\"',;&}]+)",
    ),
)


class RedactionError(ValueError):
    """A configured pattern is not a valid regular expression."""


class Redactor:
    def __init__(self, patterns: Iterable[str] = ()) -> None:
        compiled: list[re.Pattern[str]] = [re.compile(p) for _, p in BUILTIN]
        for i, p in enumerate(patterns):
            try:
                compiled.append(re.compile(p))
            except re.error as exc:
                raise RedactionError(
                    f"llm.redact_patterns[{i}] {p!r} is not a valid regular expression: {exc}; "
                    "fix it in the settings (AIOPS_LLM__REDACT_PATTERNS)"
                ) from exc
        self._patterns = compiled

    def text(self, value: str) -> str:
        for rx in self._patterns:
            if rx.pattern == BUILTIN[-1][1]:
                value = rx.sub(lambda m: f"{m.group(1)}{MASK}", value)
            else:
                value = rx.sub(MASK, value)
        return value

    def data(self, value: Any) -> Any:
        """Redact every string inside JSON-like data (dicts, lists, strings)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        return value


def redact(text: str, patterns: Iterable[str] = ()) -> str:
    return Redactor(patterns).text(text)
