"""Remove secrets from text before it leaves the process: Slack, MCP answers, the LLM, the report
stored in Temporal history, and logs all pass through one `Redactor`.

Two kinds of patterns:
- Token shapes, from detect-secrets' maintained detectors (AWS, GitHub, GitLab, Slack, Stripe,
  Twilio, SendGrid, npm, PyPI, OpenAI, JWT, Discord, Telegram, Mailchimp, Azure storage, ...)
  plus a few it lacks (Google API keys, Slack app tokens, GitHub fine-grained tokens, ...).
- Secrets by context, which no token shape can find: `password=...` in every spelling (quoted,
  multi-word, JSON-escaped, URL-encoded, `--password x`, "the password is x"), Authorization and
  Cookie headers, credentials in URLs (passwords may hold `@`), private key blocks (cut-off ones
  too), and the operator's own regular expressions (`llm.redact_patterns`).
What matched is replaced by `[REDACTED]`; the key, the header name or the key's BEGIN line stay,
so a reader still sees what was there.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

MASK = "[REDACTED]"


@functools.cache
def _library_patterns() -> tuple[re.Pattern[str], ...]:
    """detect-secrets' token shapes. Imported on first use: the package takes ~0.4 s to import,
    which a CLI command that never redacts should not pay. Its high-entropy and keyword
    detectors are left out: the first masks image digests and commit ids (evidence), the second
    needs a file type; the context rules below do its job."""
    from detect_secrets.plugins.artifactory import ArtifactoryDetector
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    detectors = (
        ArtifactoryDetector,
        AWSKeyDetector,
        AzureStorageKeyDetector,
        DiscordBotTokenDetector,
        GitHubTokenDetector,
        GitLabTokenDetector,
        JwtTokenDetector,
        MailchimpDetector,
        NpmDetector,
        OpenAIDetector,
        PypiTokenDetector,
        SendGridDetector,
        SlackDetector,
        SquareOAuthDetector,
        StripeDetector,
        TelegramBotTokenDetector,
        TwilioKeyDetector,
    )
    return tuple(rx for detector in detectors for rx in detector().denylist)


# Token shapes detect-secrets does not know (yet).
_SHAPES = (
    # JWTs whole (detect-secrets' pattern stops before the signature).
    r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
    r"\bAIza[0-9A-Za-z_-]{35}",  # Google API key
    r"\bya29\.[0-9A-Za-z_-]{20,}",  # Google OAuth access token
    r"\bxapp-\d-[A-Za-z0-9-]{10,}",  # Slack app-level token
    r"\bxox[a-z]-[A-Za-z0-9-]{10,}",  # Slack tokens of newer prefixes (xoxe-, ...)
    r"\bgithub_pat_[A-Za-z0-9_]{22,}",  # GitHub fine-grained token
    r"\bhf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",  # OpenAI / Anthropic style
    r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}",  # Stripe secret and restricted keys
    r"\bnpm_[A-Za-z0-9]{36}\b",
    r"\bdckr_pat_[A-Za-z0-9_-]{20,}",  # Docker Hub
    r"\bdop_v1_[a-f0-9]{64}\b",  # DigitalOcean
    r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",  # Shopify
    r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}",  # HashiCorp Vault
    r"\bAGE-SECRET-KEY-1[A-Z0-9]{58}\b",
    r"\bglpat-[A-Za-z0-9_-]{20,}",
)

_KEY = (
    r"(?:passw(?:or)?d|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|credentials?|auth[_-]?key|session[_-]?key)"
)
# Keys that name a secret without holding one: `password_file`, `secretName`, `max_tokens`.
_NOT_A_VALUE = re.compile(
    r"(?:file|path|dir|name|ref|type|kind|id|count|total|used|max|min|num|len|length|size|"
    r"limit|budget|ttl|expir\w*|age|policy|reset|rotat\w*|hash|source|tokens|_at)$|^(?:max|min|num)",
    re.IGNORECASE,
)
_STOPWORDS = {
    "token",
    "tokens",
    "auth",
    "authentication",
    "header",
    "scheme",
    "realm",
    "required",
    "missing",
    "expired",
    "invalid",
    "is",
    "was",
    "and",
    "or",
    "the",
    "none",
    "null",
    "true",
    "false",
}

# A quoted value (possibly JSON-escaped, possibly several words) or a bare word.
_VALUE = (
    r"(?P<value>\\\"(?:[^\"\\]|\\[^\"])*?\\\""
    r"|\"[^\"\n]*\""
    r"|'[^'\n]*'"
    r"|[^\s\"',;&}\])]+)"
)
_CONTEXT: tuple[str, ...] = (
    # Private key blocks, also when cut off before their END line.
    r"(?P<keep>-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----)(?P<value>[\s\S]*?"
    r"(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|\Z))",
    r"(?P<keep>PuTTY-User-Key-File-\d:)(?P<value>[\s\S]*\Z)",
    # Header lines whose whole value is secret.
    r"(?im)(?P<keep>\b(?:set-)?cookie\s*:\s*)(?P<value>[^\r\n]+)",
    r"(?i)(?P<keep>\b(?:proxy-)?authorization\"?\s*[:=]\s*\"?"
    r"(?:(?:bearer|basic|token|digest|apikey|api-key|negotiate|ntlm|aws4-hmac-sha256)\s+)?)"
    r"(?P<value>[^\s\"',;]+(?:,\s*[A-Za-z]+=[^\s\"',;]+)*)",
    r"(?i)(?P<keep>\bx-[a-z-]*(?:key|token|secret|auth)[a-z-]*\s*:\s*)(?P<value>[^\s\"',;]+)",
    r"(?i)(?P<keep>\bbearer\s+)(?P<value>[A-Za-z0-9._~+/-]+=*)(?![\w.~+/=-])",
    r"(?i)(?P<keep>\bbasic\s+)(?P<value>[A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])",
    # Credentials in URLs: the password may hold '@', the host may not.
    r"(?P<keep>://[^\s/:@]+:)(?P<value>[^\s/]+)(?=@[^\s/@]+)",
    # Secrets in query strings, plain and URL-encoded.
    r"(?i)(?P<keep>[?&;](?:[\w.-]*" + _KEY + r"[\w.-]*|sig|signature|x-amz-signature|"
    r"x-amz-credential|key)=)(?P<value>[^&\s#\"']+)",
    r"(?i)(?P<key>[\w.-]*" + _KEY + r"[\w.-]*)(?P<keep>(?:%22)?(?:%3D|%3A)(?:%20)*(?:%22)?)"
    r"(?P<value>[^&\s%\"']+(?:%[0-9A-Fa-f]{2}[^&\s%\"']*)*)",
    # Command-line flags: --password x, --db-password=x.
    r"(?i)(?<![\w-])(?P<key>--?(?:[a-z][\w-]*)?" + _KEY + r"[\w-]*)(?P<keep>=|[ \t]+)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"']+)",
    # key=value, key: value, "key": "value", \"key\": \"value\", key is value.
    r"(?i)(?P<key>[\w.-]*"
    + _KEY
    + r"[\w.-]*)(?P<keep>\\?[\"']?\s*(?:[:=]|\s(?:is|was)\s)\s*)"
    + _VALUE,
)


class RedactionError(ValueError):
    """A configured pattern is not a valid regular expression."""


class Redactor:
    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self._context = [re.compile(p) for p in _CONTEXT]
        self._shapes = [re.compile(p) for p in _SHAPES]
        self._shapes += _library_patterns()
        for i, p in enumerate(patterns):
            try:
                self._shapes.append(re.compile(p))
            except re.error as exc:
                raise RedactionError(
                    f"llm.redact_patterns[{i}] {p!r} is not a valid regular expression: {exc}; "
                    "fix it in the settings (AIOPS_LLM__REDACT_PATTERNS)"
                ) from exc

    def text(self, value: str) -> str:
        for rx in self._context:
            value = rx.sub(_keep_key, value)
        for rx in self._shapes:
            value = rx.sub(_mask_match, value)
        return value

    def data(self, value: Any) -> Any:
        """Redact every string inside JSON-like data (dicts, lists, tuples, strings)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        return value

    def model(self, value: Any) -> Any:
        """A pydantic model with every string field redacted (validated again as its type)."""
        return type(value).model_validate(self.data(value.model_dump(mode="json")))


def lazy_text(patterns: Iterable[str] = ()) -> Callable[[str], str]:
    """`Redactor(patterns).text`, built on first use (for the log processor)."""
    kept = list(patterns)
    built: list[Redactor] = []

    def text(value: str) -> str:
        if not built:
            built.append(Redactor(kept))
        return built[0].text(value)

    return text


def _keep_key(m: re.Match[str]) -> str:
    groups = m.groupdict()
    key, keep, value = groups.get("key") or "", groups.get("keep") or "", groups["value"]
    if key and _NOT_A_VALUE.search(key.strip("-_.")):
        return m.group(0)
    bare = value.strip("\"'\\")
    if bare.lower() in _STOPWORDS or not bare or bare == MASK or bare.startswith("[REDACTED"):
        return m.group(0)
    quote = value[: len(value) - len(value.lstrip("\"'\\"))]
    return f"{key}{keep}{quote}{MASK}{quote[::-1] if quote else ''}"


_EDGES = " \t\r\n\"'=:"


def _mask_match(m: re.Match[str]) -> str:
    """Mask the secret of a token-shape match: its longest group when that is most of the match
    (detectors capture the secret after a key), else the match without the delimiters some
    detectors include around it (others capture only a prefix such as `ghp`)."""
    text = m.group(0)
    groups = [i for i in range(1, (m.re.groups or 0) + 1) if m.group(i)]
    longest = max(groups, key=lambda i: len(m.group(i)), default=None)
    if longest is not None and 2 * len(m.group(longest)) >= len(text):
        start, end = m.start(longest) - m.start(), m.end(longest) - m.start()
    else:
        start, end = 0, len(text)
        while start < end and text[start] in _EDGES:
            start += 1
        while end > start and text[end - 1] in _EDGES:
            end -= 1
    if start == end or text[start:end] == MASK:
        return text
    return text[:start] + MASK + text[end:]


def redact(text: str, patterns: Iterable[str] = ()) -> str:
    return Redactor(patterns).text(text)
