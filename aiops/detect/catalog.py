"""The signal catalog: PromQL templates for the golden signals over real exporters' metric names.

Templates use two placeholders: `$filter` (extra label matchers, e.g. a namespace, placed inside
a selector's braces) and `$window` (the range of rate()/increase()). `Signal.render` fills them.
Istio metrics come from the destination side (reporter="destination"), cAdvisor's from real
containers only (container!="", container!="POD"), so pause containers and pod-level cgroup
totals are not double counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops.domain.models import Direction

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FILTER = re.compile(r"(,\s*)?\$filter")


class Signal(BaseModel):
    """One thing worth watching, as a PromQL query whose series are each one entity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="snake_case id, e.g. 'error_ratio'")
    query: str = Field(description="PromQL template with optional $filter and $window")
    entity_label: str = Field(description="label naming the entity, e.g. 'destination_workload'")
    direction: Direction = Field(description="which way is bad: up, down or both")
    unit: str = Field(description="unit of the values, e.g. 'ratio', 'ms', 'req/s', 'cores'")
    description: str = ""
    namespace_label: str | None = Field(
        default="namespace",
        description="label holding the Kubernetes namespace; None for "
        "cluster-scoped signals (nodes)",
    )
    group: Literal[
        "traffic", "errors", "latency", "saturation", "availability", "node", "custom"
    ] = "custom"
    # The smallest change worth an incident: a series must move at least this far from its
    # normal level (the detector's slow-moving centre) before its novelty counts. Without a
    # floor, a series that was flat for an hour alarms on any new high, however tiny.
    min_delta: float = Field(
        default=0.0,
        ge=0.0,
        description="minimum absolute change from the normal level, in the signal's unit",
    )
    min_ratio: float = Field(
        default=1.0,
        ge=1.0,
        description="minimum relative change: up to >= normal x min_ratio, down to <= normal / "
        "min_ratio (1: no relative floor)",
    )
    seed_new_series: bool = Field(
        default=True,
        description="a new pod's series starts from its workload's other pods' (current or "
        "earlier) normal range instead of learning from scratch; off for signals a healthy "
        "new pod shows at first (not ready while it starts)",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError(f"signal name {v!r} must be snake_case (a-z, 0-9, _)")
        return v

    @field_validator("entity_label")
    @classmethod
    def _check_label(cls, v: str) -> str:
        if not _LABEL.fullmatch(v):
            raise ValueError(f"entity_label {v!r} is not a valid Prometheus label name")
        return v

    @field_validator("query")
    @classmethod
    def _check_query(cls, v: str) -> str:
        q = v.strip()
        if not q:
            raise ValueError("query must not be empty")
        if q.count("(") != q.count(")") or q.count("{") != q.count("}"):
            raise ValueError(f"query has unbalanced brackets: {q!r}")
        unknown = set(re.findall(r"\$([A-Za-z_]\w*)", q)) - {"filter", "window"}
        if unknown:
            raise ValueError(
                f"query uses unknown placeholders {sorted(unknown)}; only $filter and $window exist"
            )
        return q

    def render(self, filters: Mapping[str, str] | None = None, window: str = "1m") -> str:
        """The runnable PromQL: `$filter` becomes label matchers, `$window` the rate range."""
        if not re.fullmatch(r"\d+(ms|s|m|h|d|w|y)", window):
            raise ValueError(f"window {window!r} must be a Prometheus duration like 1m or 30s")
        matchers = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted((filters or {}).items()))
        for k in filters or {}:
            if not _LABEL.fullmatch(k):
                raise ValueError(f"filter label {k!r} is not a valid Prometheus label name")

        def fill(m: re.Match[str]) -> str:
            if not matchers:
                return ""
            return ("," if m.group(1) else "") + matchers

        return _FILTER.sub(fill, self.query).replace("$window", window)

    def render_for(self, namespace: str | None = None, window: str = "1m") -> str:
        """Render restricted to one namespace (ignored for cluster-scoped signals)."""
        filters = {self.namespace_label: namespace} if namespace and self.namespace_label else {}
        return self.render(filters, window)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_ISTIO_BY = "destination_workload, destination_workload_namespace"
_POD_BY = "namespace, pod, container"
_CONTAINERS = 'container!="", container!="POD"'

BUILTIN_SIGNALS: tuple[Signal, ...] = (
    Signal(
        name="request_rate",
        min_ratio=2.0,
        min_delta=0.5,
        group="traffic",
        entity_label="destination_workload",
        namespace_label="destination_workload_namespace",
        direction=Direction.BOTH,
        unit="req/s",
        description="Requests per second received by each workload (Istio, server side).",
        query=f'sum by ({_ISTIO_BY}) (rate(istio_requests_total{{reporter="destination", '
        f"$filter}}[$window]))",
    ),
    Signal(
        name="error_ratio",
        min_delta=0.01,
        group="errors",
        entity_label="destination_workload",
        namespace_label="destination_workload_namespace",
        direction=Direction.UP,
        unit="ratio",
        description="Share of a workload's requests answered with a 5xx code.",
        # A workload that never failed has no 5xx series: `or ... * 0` makes its ratio 0
        # rather than absent, so the detector learns the healthy baseline and sees the first
        # errors at once (an absent series would be new, and new series are not scored at
        # first).
        query=f'(sum by ({_ISTIO_BY}) (rate(istio_requests_total{{reporter="destination", '
        f'response_code=~"5..", $filter}}[$window])) or sum by ({_ISTIO_BY}) '
        f'(rate(istio_requests_total{{reporter="destination", $filter}}[$window])) * 0) '
        f"/ sum by ({_ISTIO_BY}) "
        f'(rate(istio_requests_total{{reporter="destination", $filter}}[$window]))',
    ),
    Signal(
        name="latency_p99",
        min_delta=50.0,
        min_ratio=2.5,
        group="latency",
        entity_label="destination_workload",
        namespace_label="destination_workload_namespace",
        direction=Direction.UP,
        unit="ms",
        description="99th percentile of server-side request duration per workload, where "
        "the window holds at least 100 requests.",
        # The 99th percentile of a few dozen requests is their slowest one: noise, not a
        # latency level. Fewer than 100 requests in the window give no value (a gap).
        query=f"histogram_quantile(0.99, sum by (le, {_ISTIO_BY}) (rate("
        f'istio_request_duration_milliseconds_bucket{{reporter="destination", $filter}}'
        f"[$window]))) and on ({_ISTIO_BY}) sum by ({_ISTIO_BY}) (increase("
        f'istio_request_duration_milliseconds_count{{reporter="destination", $filter}}'
        f"[$window])) >= 100",
    ),
    Signal(
        name="cpu_usage",
        min_delta=0.05,
        min_ratio=1.5,
        group="saturation",
        entity_label="pod",
        direction=Direction.UP,
        unit="cores",
        description="CPU used by each container (cAdvisor), whether or not it has a limit.",
        query=f"sum by ({_POD_BY}) (rate(container_cpu_usage_seconds_total{{{_CONTAINERS}, "
        f"$filter}}[$window]))",
    ),
    Signal(
        name="cpu_vs_limit",
        min_delta=0.25,
        min_ratio=1.5,
        group="saturation",
        entity_label="pod",
        direction=Direction.UP,
        unit="ratio",
        description="CPU used against the container's CPU limit (quota/period); only "
        "containers with a limit.",
        query=f"sum by ({_POD_BY}) (rate(container_cpu_usage_seconds_total{{{_CONTAINERS}, "
        f"$filter}}[$window])) / (sum by ({_POD_BY}) (container_spec_cpu_quota{{"
        f"{_CONTAINERS}, $filter}} > 0) / sum by ({_POD_BY}) (container_spec_cpu_period{{"
        f"{_CONTAINERS}, $filter}}))",
    ),
    Signal(
        name="memory_vs_limit",
        min_delta=0.08,
        group="saturation",
        entity_label="pod",
        direction=Direction.UP,
        unit="ratio",
        description="Working set against the memory limit (the OOM killer's view); only "
        "containers with a limit.",
        query=f"sum by ({_POD_BY}) (container_memory_working_set_bytes{{{_CONTAINERS}, "
        f"$filter}}) / sum by ({_POD_BY}) (container_spec_memory_limit_bytes{{"
        f"{_CONTAINERS}, $filter}} > 0)",
    ),
    Signal(
        name="restarts",
        min_delta=0.5,
        group="availability",
        entity_label="pod",
        direction=Direction.UP,
        unit="restarts",
        description="Container restarts per pod over the window (kube-state-metrics).",
        query="sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total{"
        'container!="", $filter}[$window]))',
    ),
    Signal(
        name="pods_not_ready",
        min_delta=0.5,
        seed_new_series=False,
        group="availability",
        entity_label="pod",
        direction=Direction.UP,
        unit="pods",
        description="Pods whose Ready condition is false.",
        query='sum by (namespace, pod) (kube_pod_status_ready{condition="false", $filter})',
    ),
    Signal(
        name="replicas_available_ratio",
        min_delta=0.2,
        group="availability",
        entity_label="deployment",
        direction=Direction.DOWN,
        unit="ratio",
        description="Available replicas against desired replicas per deployment.",
        query="sum by (namespace, deployment) (kube_deployment_status_replicas_available{"
        'deployment!="", $filter}) / sum by (namespace, deployment) '
        '(kube_deployment_spec_replicas{deployment!="", $filter} > 0)',
    ),
    Signal(
        name="node_cpu_busy",
        min_delta=0.1,
        min_ratio=1.2,
        group="node",
        entity_label="instance",
        namespace_label=None,
        direction=Direction.UP,
        unit="ratio",
        description="Share of node CPU time not idle (node_exporter).",
        query='1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle", $filter}[$window]))',
    ),
    Signal(
        name="node_memory_available_ratio",
        min_delta=0.05,
        group="node",
        entity_label="instance",
        namespace_label=None,
        direction=Direction.DOWN,
        unit="ratio",
        description="MemAvailable against MemTotal per node (memory pressure when low).",
        query='node_memory_MemAvailable_bytes{job!="", $filter} / '
        'node_memory_MemTotal_bytes{job!="", $filter}',
    ),
)


class SignalCatalog:
    """Built-in signals plus user-defined ones (from settings), looked up by name."""

    def __init__(self, signals: Iterable[Signal] = BUILTIN_SIGNALS) -> None:
        self._signals: dict[str, Signal] = {}
        for s in signals:
            self.add(s)

    def add(self, signal: Signal | Mapping[str, Any], *, replace: bool = False) -> Signal:
        sig = signal if isinstance(signal, Signal) else Signal.model_validate(dict(signal))
        if sig.name in self._signals and not replace:
            raise ValueError(
                f"signal {sig.name!r} already exists; pick another name or set "
                "replace=True to override the built-in one"
            )
        self._signals[sig.name] = sig
        return sig

    def __getitem__(self, name: str) -> Signal:
        try:
            return self._signals[name]
        except KeyError:
            raise KeyError(f"unknown signal {name!r}; known: {', '.join(self.names())}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._signals

    def __iter__(self) -> Iterator[Signal]:
        return iter(self._signals.values())

    def __len__(self) -> int:
        return len(self._signals)

    def names(self) -> list[str]:
        return list(self._signals)


def build_catalog(
    user_signals: Iterable[Signal | Mapping[str, Any]] = (), *, replace: bool = True
) -> SignalCatalog:
    """The built-in catalog extended (or, with replace=True, overridden) by user signals.

    User signals usually come from settings (a list of mappings with the Signal fields).
    """
    cat = SignalCatalog()
    for s in user_signals:
        cat.add(s, replace=replace)
    return cat
