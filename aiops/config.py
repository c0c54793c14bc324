"""One settings tree for the whole daemon.

Sources, highest priority first: constructor arguments, `AIOPS_*` environment variables (`__`
separates nesting levels, e.g. `AIOPS_TEMPORAL__ADDRESS`), the YAML file named by `AIOPS_CONFIG`
(or `--config`), then the defaults below.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CONFIG_ENV = "AIOPS_CONFIG"


class ConfigError(Exception):
    """Settings could not be loaded; the message names the setting and how to fix it."""


class _Section(BaseModel):
    # A misspelled setting must be an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


def _no_blank(values: list[str], what: str) -> None:
    # An empty token matches an empty `Authorization: Bearer` header: it is no credential at all.
    if any(not v.strip() for v in values):
        raise ValueError(f"{what} must not be empty or whitespace; remove it or set a real one")


def _no_blank_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        _no_blank([value.get_secret_value()], "the secret")
    return value


_ALLOWED_HOSTS_HELP = (
    "Host names clients reach this server by, besides loopback names and the bind address "
    "(e.g. aiops-mcp.aiops.svc); '*' accepts any. JSON list in the environment"
)


class TemporalSettings(_Section):
    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "aiops"
    tls: bool = False
    tls_cert: Path | None = Field(default=None, description="client certificate (mTLS)")
    tls_key: Path | None = None
    api_key: SecretStr | None = Field(default=None, description="Temporal Cloud API key")
    ui_url: str = "http://127.0.0.1:8233"

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("must be host:port, e.g. 127.0.0.1:7233")
        return value


class DevServerSettings(_Section):
    ip: str = "127.0.0.1"
    port: int = Field(default=7233, ge=1, le=65535)
    ui_port: int = Field(default=8233, ge=1, le=65535)
    log_level: str = "warn"


class PrometheusSettings(_Section):
    url: str = "http://127.0.0.1:9090"
    timeout_s: float = Field(default=10.0, gt=0)
    verify_tls: bool = True
    bearer_token: SecretStr | None = None

    _bearer = field_validator("bearer_token")(_no_blank_secret)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://, e.g. http://127.0.0.1:9090")
        return value.rstrip("/")


class KubernetesSettings(_Section):
    kubeconfig: Path | None = Field(default=None, description="path; empty: in-cluster or ~/.kube")
    context: str | None = None
    in_cluster: bool = False
    request_timeout_s: float = Field(
        default=10.0, gt=0, description="each API call; also cut to its activity's time limit"
    )


class LlmSettings(_Section):
    base_url: str | None = Field(default=None, description="OpenAI-compatible API; unset: none")
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    max_tokens_per_incident: int = Field(default=20_000, ge=0)
    redact_patterns: list[str] = Field(
        default_factory=list,
        description="your own regular expressions of secrets, masked at every exit (Slack, MCP, "
        "LLM, incident reports, logs) besides the built-in ones",
    )

    _key = field_validator("api_key")(_no_blank_secret)

    @field_validator("redact_patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern [{i}] {pattern!r} is not a regular expression: {exc}"
                ) from exc
        return value


class SlackSettings(_Section):
    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    channel: str | None = None
    mode: Literal["socket", "http"] = "socket"
    api_url: str | None = Field(default=None, description="Slack Web API base, for tests/proxies")
    allowed_hosts: list[str] = Field(default_factory=list, description=_ALLOWED_HOSTS_HELP)

    _secrets = field_validator("bot_token", "app_token", "signing_secret")(_no_blank_secret)


class McpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    enable_write_tools: bool = False
    tokens: dict[str, str] = Field(
        default_factory=dict, description="bearer token -> identity (roles come from policy)"
    )
    allowed_hosts: list[str] = Field(default_factory=list, description=_ALLOWED_HOSTS_HELP)

    @field_validator("tokens")
    @classmethod
    def _real_tokens(cls, value: dict[str, str]) -> dict[str, str]:
        _no_blank(list(value), "a token")
        _no_blank(list(value.values()), "the identity of a token")
        return value


class AlertmanagerSettings(_Section):
    """The Alertmanager webhook receiver (`aiops webhook`; `aiops dev` serves it too)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8766, ge=1, le=65535)
    tokens: list[SecretStr] = Field(
        default_factory=list,
        description="bearer tokens Alertmanager may send (http_config."
        "authorization.credentials); JSON list in the environment",
    )
    basic_auth: dict[str, SecretStr] = Field(
        default_factory=dict, description="username -> password (http_config.basic_auth)"
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    allowed_hosts: list[str] = Field(default_factory=list, description=_ALLOWED_HOSTS_HELP)

    @field_validator("tokens")
    @classmethod
    def _real_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        _no_blank([t.get_secret_value() for t in value], "a token")
        return value

    @field_validator("basic_auth")
    @classmethod
    def _real_users(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        _no_blank(list(value), "a user name")
        _no_blank([p.get_secret_value() for p in value.values()], "a password")
        return value


class DetectionSettings(_Section):
    """The live detection pass (aiops.activities.detection)."""

    interval_s: float = Field(
        default=15.0, gt=0, description="one pass per interval; use the scrape interval"
    )
    prime_s: float = Field(
        default=3600.0,
        ge=0,
        description="history read on a cold start "
        "(the detector needs 200 samples before it alarms)",
    )
    rate_window: str = Field(
        default="1m",
        pattern=r"^\d+(ms|s|m|h|d|w|y)$",
        description="range of rate() in the catalog's queries",
    )
    report_window_s: float = Field(
        default=600.0, gt=0, description="older episodes found in history are counted, not reported"
    )
    settle_s: float = Field(
        default=2.0,
        ge=0,
        description="each pass scores up to now minus "
        "this (scrapes still in flight); about 0.1 s is enough with a 1 s "
        "scrape next to Prometheus",
    )
    disabled: list[str] = Field(default_factory=list, description="catalog signals to skip")
    min_change: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="per-signal minimum change worth an anomaly, overriding the catalog's: "
        "{signal: {min_delta: absolute, in the signal's unit; min_ratio: relative, >= 1}}, "
        "e.g. {memory_vs_limit: {min_delta: 0.03}}",
    )
    signals: list[dict[str, Any]] = Field(
        default_factory=list,
        description="user signals (name, query, entity_label, direction, unit, ...; see the "
        "README's Metric profiles); a name already in the catalog replaces that signal",
    )
    parallel_queries: int = Field(default=4, ge=1, le=32)
    checkpoint_every_s: float = Field(
        default=300.0,
        ge=0,
        description="write the detector state file at most this often (0: every pass); a "
        "worker that restarts re-reads the passes since from Prometheus",
    )


def default_cli_key() -> Path:
    """Where a person's own signing key lives (`aiops key generate` writes it)."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "aiops" / "approver.key"


class SigningSettings(_Section):
    """The keys that prove who decided (README: "Proof of who decided"). Private key files,
    ed25519 PEM; their public halves go into the policy."""

    cli_key: Path = Field(
        default_factory=default_cli_key,
        description="your own key: `aiops approve`/`reject` and the MCP server over stdio sign "
        "with it; the policy lists its public half under your identity's `cli:`",
    )
    mcp_key: Path | None = Field(
        default=None, description="the MCP server's front-door key (HTTP, bearer tokens)"
    )
    slack_key: Path | None = Field(default=None, description="the Slack app's front-door key")


class ProfileSettings(_Section):
    """Metric profiles (aiops/profiles): which exporters' metrics the signals are read from."""

    dirs: list[Path] = Field(
        default_factory=list,
        description="more profile files (*.yaml); one named like a shipped profile replaces it",
    )
    enabled: list[str] = Field(
        default_factory=list,
        description="use only these profiles (default: every profile, as discovery finds them)",
    )
    discovery: bool = Field(
        default=True,
        description="ask Prometheus which metric families exist and turn on the signals they "
        "can feed; off: every part of every enabled profile (a query over absent families is "
        "merely empty)",
    )
    refresh_s: float = Field(default=300.0, gt=0, description="ask again this often")
    lookback_s: float = Field(
        default=600.0, gt=0, description="a family counts when it has samples this recent"
    )


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class TelemetrySettings(_Section):
    """aiops' own health, metrics and traces (aiops.telemetry)."""

    host: str = Field(
        default="127.0.0.1",
        description="bind address of /healthz, /readyz and /metrics (unauthenticated GETs of "
        "aggregate figures on a port of their own; 0.0.0.0 in a pod for the probes)",
    )
    port: int | None = Field(
        default=None, ge=0, le=65535, description="unset: no health or metrics server"
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces; "
        "unset: no tracing (needs the `tracing` extra)",
    )
    service_name: str = "aiops"
    llm_usd_per_1k_tokens: float = Field(
        default=0.0, ge=0, description="price of the configured model, for aiops_llm_cost_usd"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AIOPS_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    state_dir: Path = Path(".state")
    playbooks_dir: Path = Path("playbooks")
    policies_dir: Path = Path("policies")
    cli_identity: str | None = Field(
        default=None, description="no longer used: the CLI signs with your key instead"
    )
    temporal: TemporalSettings = TemporalSettings()
    dev_server: DevServerSettings = DevServerSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    llm: LlmSettings = LlmSettings()
    slack: SlackSettings = SlackSettings()
    mcp: McpSettings = McpSettings()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    detection: DetectionSettings = DetectionSettings()
    signing: SigningSettings = Field(default_factory=SigningSettings)
    profiles: ProfileSettings = ProfileSettings()
    log: LogSettings = LogSettings()
    telemetry: TelemetrySettings = TelemetrySettings()

    @field_validator("cli_identity")
    @classmethod
    def _no_named_identity(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "the CLI no longer names whom it acts for: it signs with your own key "
                "(AIOPS_SIGNING__CLI_KEY, made by `aiops key generate`, its public half in the "
                "policy); unset AIOPS_CLI_IDENTITY"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            return (init_settings, env_settings)
        return (init_settings, env_settings, _YamlFile(settings_cls, Path(path)))


class _YamlFile(YamlConfigSettingsSource):
    """pydantic-settings' YAML source, for the file AIOPS_CONFIG names: a missing file is an
    error (the library would skip it silently), and every problem names the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        if not path.is_file():
            raise ConfigError(
                f"config file {path}: cannot read it (no such file); fix the path in "
                f"${CONFIG_ENV} or --config"
            )
        self.path = path
        super().__init__(settings_cls, yaml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            data: Any = super()._read_file(file_path)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {self.path}: not valid YAML: {exc}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"config file {self.path}: cannot read it ({exc}); fix the path in ${CONFIG_ENV}"
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(
                f"config file {self.path}: the top level must be a mapping of settings"
            )
        return data


def load_settings(**overrides: Any) -> Settings:
    """Load settings, turning validation errors into one message naming each bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc


# Settings whose value is never echoed back in an error message.
_SECRETIVE = re.compile(r"token|secret|password|api_key|basic_auth", re.IGNORECASE)


def describe_validation_error(exc: ValidationError) -> str:
    where = os.environ.get(CONFIG_ENV) or "the config file"
    lines = []
    for err in exc.errors():
        dotted = ".".join(str(part) for part in err["loc"])
        env = "AIOPS_" + "__".join(str(part).upper() for part in err["loc"])
        got = err.get("input")
        secret = _SECRETIVE.search(dotted) is not None
        shown = "" if isinstance(got, dict) or secret else f" (got {got!r})"
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"invalid setting {dotted}{shown}: {msg}; set {env} or fix {where}")
    return "\n".join(lines)


_SECRET_MASK = "********"  # noqa: S105 - the mask, not a secret


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data with every secret replaced by a mask."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return _SECRET_MASK if value.get_secret_value() else ""
        if isinstance(value, BaseModel):
            return {name: walk(getattr(value, name)) for name in type(value).model_fields}
        if isinstance(value, dict):
            return {str(k): walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    data: dict[str, Any] = walk(settings)
    # MCP tokens are secrets used as keys: show only which identities exist.
    data["mcp"]["tokens"] = {
        _SECRET_MASK + f"#{i}": ident for i, ident in enumerate(settings.mcp.tokens.values())
    }
    return data
