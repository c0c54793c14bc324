"""Remove secrets from text before it leaves the process: Slack, MCP answers, the LLM, the report
stored in Temporal history, and logs all pass through one `Redactor`.

Two kinds of patterns:
- Token shapes, from detect-secrets' maintained detectors (AWS, GitHub, GitLab, Slack, Stripe,
  Twilio, SendGrid, npm, PyPI, OpenAI, JWT, Discord, Telegram, Mailchimp, Azure storage, ...)
  plus a few it lacks (Google API keys, Slack app tokens, GitHub fine-grained tokens, ...).
- Secrets by context, which no token shape can find: `password=...` in every spelling (quoted,
  multi-word, JSON-escaped at any depth, URL-encoded, `=>`, `<password>x</password>`,
  `--password x`, "the password is x"), Kubernetes env entries whose name names a secret,
  Authorization and Cookie headers, credentials in URLs and `curl -u` (passwords may hold `@`),
  webhook URLs, private key blocks (cut-off ones too), and the operator's own regular expressions
  (`llm.redact_patterns`).
What matched is replaced by `[REDACTED]`; the key, the header name or the key's BEGIN line stay,
so a reader still sees what was there. Text that is JSON (MCP answers, tool-call arguments) stays
valid JSON: a mask keeps the value's quotes at their escape depth and never ends a string early.
Structured data (`Redactor.data`) is also masked by its keys: `{"password": "x"}` carries the
secret's name in the key, not in the string.
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
    r"limit|budget|ttl|expir\w*|age|policy|reset|rotat\w*|hash|source|_at)$|^(?:max|min|num)",
    re.IGNORECASE,
)
# `tokens` names either a list of tokens or a count of them (an LLM's usage): a number is a count.
_COUNT_OF_TOKENS = re.compile(r"tokens$", re.IGNORECASE)
_SECRET_KEY = re.compile(_KEY, re.IGNORECASE)
# A name holding one of those words (`DB_PASSWORD`, `x.api_key`). It starts where a name can start
# (after a non-name character or a %-escape) and is at most 64 characters either side: unanchored
# and unbounded, `[\w.-]*` before the word made every long run of name characters (a hex dump,
# URL-safe base64) cost time quadratic in its length, seconds for 4 KB.
_NAMED = r"(?:(?<![\w.-])|(?<=%[0-9A-Fa-f]{2}))[\w.-]{0,64}?" + _KEY + r"[\w.-]{0,64}"
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
    "nil",
    "null",
    "true",
    "false",
}

# A quote, JSON-escaped to any depth: text logged inside JSON inside JSON (`\\\"`) is common.
_Q = r"\\*[\"']?"
# A quoted value (JSON-escaped to any depth, possibly several words) or a bare word. A bare word
# stops before an escaped quote or line break (`\"`, `\n`): inside JSON text those end the string
# or the line, and masking them would end the JSON string early.
_VALUE = (
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*\""
    r"|'[^'\n]*'"
    r"|(?P<q>\\+[\"']).*?(?P=q)"
    r"|(?:[^\s\"',;&}\])\\]|\\\\|\\(?![nrt\"'\\]))+)"
)
# Separators between a key and its value: `=`, `:`, Ruby's and PHP's `=>`, prose "is"/"was".
_SEP = r"\s*(?:=>|[:=]|\s(?:is|was)\s)\s*"
# What a block or a header line holds up to its end; in JSON text that end is the closing quote
# of the string (at any escape depth), which a mask must leave in place.
_TO_STRING_END = r"(?:[^\"\\]|\\[^\"])*?"
_STRING_END = r"(?=\\*\"|\Z)"
_CONTEXT: tuple[str, ...] = (
    # Private key blocks, also when cut off before their END line.
    r"(?P<keep>-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----)"
    rf"(?P<value>{_TO_STRING_END}(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|{_STRING_END}))",
    r"(?P<keep>PuTTY-User-Key-File-\d:)(?P<value>" + _TO_STRING_END + _STRING_END + r")",
    # Header lines whose whole value is secret.
    r"(?im)(?P<keep>\b(?:set-)?cookie\s*:\s*)(?P<value>(?:[^\r\n\"\\]|\\[^nr\"]|\"(?![,}\]:]|$))+)",
    r"(?i)(?P<keep>\b(?:proxy-)?authorization\"?\s*[:=]\s*\"?"
    r"(?:(?:bearer|basic|token|digest|apikey|api-key|negotiate|ntlm|aws4-hmac-sha256)\s+)?)"
    r"(?P<value>[^\s\"',;]+(?:,\s*[A-Za-z]+=[^\s\"',;]+)*)",
    r"(?i)(?P<keep>\bx-[a-z-]*(?:key|token|secret|auth)[a-z-]*\s*:\s*)(?P<value>[^\s\"',;]+)",
    r"(?i)(?P<keep>\bbearer\s+)(?P<value>[A-Za-z0-9._~+/-]+=*)(?![\w.~+/=-])",
    r"(?i)(?P<keep>\bbasic\s+)(?P<value>[A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])",
    # Credentials in URLs: the password may hold '@', the host may not; the user may be empty
    # (`redis://:pw@host`). None of them holds a quote or a backslash, so a URL inside JSON text
    # does not reach into the next string.
    r"(?P<keep>://[^\s/:@\"'\\]*:)(?P<value>[^\s/\"'\\]+)(?=@[^\s/@\"'\\]+)",
    # Webhook URLs are their own credential: Discord's /api/webhooks/<id>/<token>.
    r"(?P<keep>/api/webhooks/\d+/)(?P<value>[\w-]{8,})",
    # Secrets in query strings, plain and URL-encoded.
    r"(?i)(?P<keep>[?&;](?:" + _NAMED + r"|sig|signature|x-amz-signature|"
    r"x-amz-credential|key)=)(?P<value>[^&\s#\"']+)",
    r"(?i)(?P<key>" + _NAMED + r")(?P<keep>(?:%22)?(?:%3D|%3A)(?:%20)*(?:%22)?)"
    r"(?P<value>[^&\s%\"']+(?:%[0-9A-Fa-f]{2}[^&\s%\"']*)*)",
    # Command-line flags: --password x, --db-password=x.
    r"(?i)(?<![\w-])(?P<key>--?(?:[a-z][\w-]{0,64}?)?" + _KEY + r"[\w-]{0,64})(?P<keep>=|[ \t]+)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"']+)",
    # user:password flags (curl -u, --user); a numeric user is a uid:gid (`docker run -u 0:0`).
    r"(?<![\w-])(?P<key>-u|--user)(?P<keep>(?:[ \t]+|=)[\"']?(?![0-9]+:)[^\s:\"'\\]+:)"
    r"(?P<value>[^\s\"'\\]+)",
    # Kubernetes env entries: the secret's name is in `name`, the secret in `value` (JSON, YAML).
    rf"(?i)(?P<key>\bname{_Q}\s*[:=]\s*{_Q}(?P<name>{_NAMED}){_Q}(?:\s|\\[nrt]|,)*{_Q}value{_Q})"
    r"(?P<keep>\s*[:=]\s*)" + _VALUE,
    # XML elements: <password>x</password>.
    r"(?i)(?<=<)(?P<key>" + _NAMED + r")(?P<keep>(?:\s[^<>]*)?>)"
    r"(?P<value>[^<\s][^<]*)(?=</(?P=key)>)",
    # key=value, key: value, "key": "value", \"key\": \"value\", key => value, key is value.
    r"(?i)(?P<key>" + _NAMED + r")(?P<keep>" + _Q + _SEP + r")" + _VALUE,
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

    def data(self, value: Any, key: str = "") -> Any:
        """Redact every string inside JSON-like data (dicts, lists, tuples, strings); a string
        under a key that names a secret (`password`, `api_key`, ...) is masked whole. Only
        strings: a number or a bool stays, so `model` can validate the result as its type."""
        if isinstance(value, str):
            if value and _SECRET_KEY.search(key) and _holds_secret(key, value):
                return MASK
            return self.text(value)
        if isinstance(value, list | tuple):
            return [self.data(v, key) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v, str(k)) for k, v in value.items()}
        return value

    def model(self, value: Any) -> Any:
        """A pydantic model with every string field redacted (validated again as its type)."""
        return type(value).model_validate(self.data(value.model_dump(mode="json")))


def lazy_data(patterns: Iterable[str] = ()) -> Callable[[Any], Any]:
    """`Redactor(patterns).data`, built on first use (for the log processor: a log line is
    data, and a field named `password` is a secret whatever its value looks like)."""
    kept = list(patterns)
    built: list[Redactor] = []

    def data(value: Any) -> Any:
        if not built:
            built.append(Redactor(kept))
        return built[0].data(value)

    return data


def _keep_key(m: re.Match[str]) -> str:
    groups = m.groupdict()
    key, keep, value = groups.get("key") or "", groups.get("keep") or "", groups["value"]
    if not _holds_secret(groups.get("name") or key, value):
        return m.group(0)
    quote = _quote_of(value)
    return f"{key}{keep}{quote}{MASK}{quote}"


def _holds_secret(key: str, value: str) -> bool:
    """Whether `value`, found under `key` (empty for a header), is a secret to mask."""
    bare = value.strip("\"'\\")
    if not bare or bare.lower() in _STOPWORDS or bare.startswith("[REDACTED"):
        return False
    key = key.strip("-_.")
    if _NOT_A_VALUE.search(key):
        return False
    return not (_COUNT_OF_TOKENS.search(key) and bare.isdigit())


def _quote_of(value: str) -> str:
    """The quote around `value` (`"`, `'`, `\\"`, ...), so the mask closes it at the same escape
    depth it was opened: a JSON document stays valid."""
    opening = re.match(r"\\*[\"']", value)
    if opening and len(value) >= 2 * len(opening[0]) and value.endswith(opening[0]):
        return opening[0]
    return ""


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
