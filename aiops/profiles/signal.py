"""A signal: one thing worth watching, as PromQL whose series are each one entity.

A signal has one or more parts, each the way one metric profile computes it (Istio's sidecars,
Linkerd's proxies, OpenTelemetry, ...). A part's query template has two placeholders: `$filter`
(label matchers placed inside a selector's braces) and `$window` (the range of rate() and
friends). A part maps the signal's canonical labels (`workload`, `namespace`, `pod`, ...) to the
exporter's own (`destination_workload`, `k8s_namespace_name`, ...): filters given in canonical
labels become the exporter's matchers, and the part's series are renamed to the canonical labels,
so every caller (detection, verification, investigation) reads the same labels whatever the
cluster runs. Several live parts combine: the first that has a series wins (`first`), or the
largest value across them (`max`: an error ratio as the worst view of it, callers' or server's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from aiops.domain.models import Direction

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FILTER = re.compile(r"(,\s*)?\$filter")
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_NEED = re.compile(
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{\s*([a-zA-Z_][a-zA-Z0-9_]*(\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*)*)?\s*\})?$"
)

Entity = Literal["workload", "pod", "deployment", "node", "edge", "namespace", "cluster", "other"]
Group = Literal["traffic", "errors", "latency", "saturation", "availability", "node", "custom"]
#: How a signal stands to load, for the detection pass (aiops.detect.load): `measures` is the load
#: itself (a workload's requests), `follows` moves with it (latency, CPU, a node's busy time).
Load = Literal["measures", "follows"]

#: The entities whose series a load can be matched to: a workload's load is its own request
#: rate, a pod's its workload's, a deployment's the workload of its name, a node's or the
#: cluster's the sum of every workload's.
LOAD_ENTITIES: dict[str, tuple[str, ...]] = {
    "measures": ("workload",),
    "follows": ("workload", "pod", "deployment", "node", "cluster"),
}

#: The labels each kind of entity has in every signal's output, whatever the exporter.
CANONICAL_LABELS: dict[str, tuple[str, ...]] = {
    "workload": ("namespace", "workload"),
    "deployment": ("namespace", "deployment"),
    "edge": ("namespace", "client", "server"),
    "namespace": ("namespace",),
}


def parse_need(text: str) -> tuple[str, tuple[str, ...]]:
    """`family` or `family{label, label}` -> (family, labels it must carry)."""
    m = _NEED.fullmatch(text.strip())
    if not m:
        raise ValueError(
            f"need {text!r} is not a metric family, optionally with the labels it must carry, "
            "e.g. response_total or rpc_server_duration_milliseconds{service_name}"
        )
    labels = tuple(x.strip() for x in (m.group(3) or "").split(",") if x.strip())
    return m.group(1), labels


def check_template(query: str) -> str:
    q = query.strip()
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


def persists_a_bad_way(persists: Direction | None, info: ValidationInfo) -> Direction | None:
    """Field validator: `persists` must be a way the signal is bad (its `direction`)."""
    direction = info.data.get("direction")
    if persists is None or direction is None or direction in (Direction.BOTH, persists):
        return persists
    raise ValueError(
        f"persists {persists.value!r} is not a bad direction of this signal (direction "
        f"{direction.value!r}): departures that way are never scored; use "
        f"{direction.value!r} or leave persists out"
    )


def load_fits_entity(load: Load | None, info: ValidationInfo) -> Load | None:
    """Field validator: `load` needs an entity a workload's load can be matched to."""
    entity = info.data.get("entity")
    if load is None or entity is None or entity in LOAD_ENTITIES[load]:
        return load
    raise ValueError(
        f"load {load!r} needs a signal about a {' or '.join(LOAD_ENTITIES[load])}, not "
        f"{entity!r}: the detection pass matches a series to the workload whose load explains "
        "it (a pod to its workload, a node to the whole cluster); leave load out"
    )


def duration_seconds(window: str) -> float:
    if not _DURATION.fullmatch(window):
        raise ValueError(f"window {window!r} must be a Prometheus duration like 1m or 30s")
    return sum(int(n) * _UNIT_S[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", window))


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class SharedQuery(BaseModel):
    """A request signal as the detection pass reads it from an answer it shares with others:
    one `rate()` of the request counter, its series marked failed or not (label_replace), split
    in Python into the request rate and the error ratio. PromQL cannot divide an answer by part
    of itself, so the signals' own queries evaluate the counter's rate three or four times;
    at 20,000 workloads that was 1.2 of the pass's 1.8 s of Prometheus' time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str = Field(
        description="PromQL template ($filter, $window): the counter's rate summed by the "
        "part's labels and those below; signals with the same text share one answer"
    )
    where: dict[str, str] = Field(
        default_factory=dict, description="only the answer's series with these label values"
    )
    failed: dict[str, str] | None = Field(
        default=None,
        description="the signal is the share of the rate in series with these label values "
        "(0 where there are none); unset: the rate itself",
    )
    worst_of: str | None = Field(
        default=None, description="a label whose values are each one view: the largest counts"
    )

    @field_validator("query")
    @classmethod
    def _check_query(cls, v: str) -> str:
        return check_template(v)

    def render(self, window: str) -> str:
        return _FILTER.sub("", self.query).replace("$window", window)

    def describe(self) -> str:
        """The split as text, so a changed one is a redefined signal (a cold start)."""
        return f"where={sorted(self.where.items())} failed={self.failed} worst_of={self.worst_of}"


@dataclass(frozen=True)
class PassForm:
    """What the detection pass asks Prometheus for a signal and how it reads the answer."""

    promql: str
    labels: tuple[tuple[str, str], ...] = ()  # (canonical, exporter's) to rename it by
    shared: SharedQuery | None = None  # split the signal out of a shared answer

    @property
    def key(self) -> str:
        """What the signal's state is valid for: the query, and the split of its answer."""
        return self.promql if self.shared is None else f"{self.promql}\n# {self.shared.describe()}"


class SignalPart(BaseModel):
    """One profile's way of computing a signal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: str = Field(default="user", description="the metric profile this part comes from")
    query: str = Field(description="PromQL template with optional $filter and $window")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="canonical label -> the exporter's label holding it (for filters and output)",
    )
    rename: bool = Field(
        default=True,
        description="rename the exporter's labels to the canonical ones in the output "
        "(off for settings' signals, whose output labels are their own)",
    )
    needs: tuple[tuple[str, ...], ...] = Field(
        default=(),
        description="metric families it reads: each entry one family, or alternatives",
    )
    guard: SignalPart | None = Field(
        default=None,
        description="the same profile's request rate, for signals valid only over enough requests",
    )
    shared: SharedQuery | None = Field(
        default=None, description="the detection pass's cheaper form (one answer, several signals)"
    )

    @field_validator("query")
    @classmethod
    def _check_query(cls, v: str) -> str:
        return check_template(v)

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, v: dict[str, str]) -> dict[str, str]:
        for canonical, source in v.items():
            for label in (canonical, source):
                if not _LABEL.fullmatch(label):
                    raise ValueError(f"{label!r} is not a valid Prometheus label name")
        return v

    @field_validator("needs")
    @classmethod
    def _check_needs(cls, v: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        for alternatives in v:
            if not alternatives:
                raise ValueError("a need lists at least one metric family")
            for need in alternatives:
                parse_need(need)
        return v

    def render(
        self,
        output: tuple[str, ...],
        filters: Mapping[str, str],
        regex: Mapping[str, str],
        window: str,
        *,
        rename: bool = True,
    ) -> str:
        """The runnable PromQL; `rename=False` leaves the exporter's labels as they are (the
        caller renames the answer by `renamed_labels`)."""
        matchers = [f'{self.labels.get(k, k)}="{escape(v)}"' for k, v in sorted(filters.items())]
        matchers += [f'{self.labels.get(k, k)}=~"{escape(v)}"' for k, v in sorted(regex.items())]
        joined = ",".join(matchers)

        def fill(m: re.Match[str]) -> str:
            if not joined:
                return ""
            return ("," if m.group(1) else "") + joined

        q = _FILTER.sub(fill, self.query).replace("$window", window)
        renames = [(c, s) for c, s in self.labels.items() if c != s] if self.rename else []
        if not renames or not rename:
            return q
        for canonical, source in renames:
            q = f'label_replace({q}, "{canonical}", "$1", "{source}", "(.*)")'
        return f"max by ({', '.join(output or tuple(self.labels))}) ({q})"

    def renamed_labels(self, output: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        """What `render` renames, as (canonical, the exporter's) pairs for each output label,
        or () when it renames nothing (the answer's labels are the signal's already)."""
        if not self.rename or all(c == s for c, s in self.labels.items()):
            return ()
        return tuple((c, self.labels.get(c, c)) for c in output or tuple(self.labels))


class Signal(BaseModel):
    """One thing worth watching, as a PromQL query whose series are each one entity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="snake_case id, e.g. 'error_ratio'")
    parts: tuple[SignalPart, ...] = Field(min_length=1)
    entity: Entity = "other"
    entity_label: str = Field(description="label naming the entity, e.g. 'workload'")
    direction: Direction = Field(description="which way is bad: up, down or both")
    unit: str = Field(description="unit of the values, e.g. 'ratio', 's', 'req/s', 'cores'")
    description: str = ""
    namespace_label: str | None = Field(
        default="namespace",
        description="label holding the Kubernetes namespace; None for "
        "cluster-scoped signals (nodes)",
    )
    group: Group = "custom"
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
    detect: bool = Field(default=True, description="watched by the detection pass")
    min_requests: int = Field(
        default=0,
        ge=0,
        description="a value only where the window holds at least this many requests "
        "(a p99 over a few dozen requests is their slowest one: noise)",
    )
    combine: Literal["first", "max"] = Field(
        default="first",
        description="several parts: the first with a series wins, or the largest value",
    )
    persists: Direction | None = Field(
        default=None,
        description="departures this way count only once they persist (a two-minute average "
        "shows them): everyday operations make short ones (bursts of load, pods being "
        "replaced during a rollout or a drain)",
    )
    load: Load | None = Field(
        default=None,
        description="measures: the signal is a workload's load; follows: its departures under "
        "extra load count only once they outlast it (aiops.detect.load)",
    )

    _persists = field_validator("persists")(persists_a_bad_way)
    _load = field_validator("load")(load_fits_entity)

    @model_validator(mode="before")
    @classmethod
    def _one_query(cls, data: Any) -> Any:
        """A signal given as one `query` (settings' signals): one part, its labels its own."""
        if isinstance(data, dict) and "query" in data:
            data = dict(data)
            if "parts" in data:
                raise ValueError("give either query or parts, not both")
            data["parts"] = [{"query": data.pop("query"), "rename": False}]
        return data

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

    @property
    def query(self) -> str:
        """The template of every part (what the signal reads), for display and checks."""
        if len(self.parts) == 1:
            return self.parts[0].query
        return " or ".join(f"({p.query})" for p in self.parts)

    @property
    def profiles(self) -> list[str]:
        return list(dict.fromkeys(p.profile for p in self.parts))

    @property
    def output_labels(self) -> tuple[str, ...]:
        return CANONICAL_LABELS.get(self.entity, ())

    def render(
        self,
        filters: Mapping[str, str] | None = None,
        window: str = "1m",
        *,
        regex: Mapping[str, str] | None = None,
        guarded: bool = True,
    ) -> str:
        """The runnable PromQL: `$filter` becomes label matchers (canonical labels: each part
        maps them to its exporter's), `$window` the rate range. `guarded=False` leaves out the
        minimum number of requests (a value for every series, however few requests)."""
        seconds = duration_seconds(window)
        for k in [*(filters or {}), *(regex or {})]:
            if not _LABEL.fullmatch(k):
                raise ValueError(f"filter label {k!r} is not a valid Prometheus label name")
        rendered = []
        for part in self.parts:
            q = part.render(self.output_labels, filters or {}, regex or {}, window)
            if guarded and self.min_requests and part.guard is not None:
                rate = part.guard.render(self.output_labels, filters or {}, regex or {}, window)
                on = ", ".join(self.output_labels)
                q = f"({q}) and on ({on}) (({rate}) * {seconds:g} >= {self.min_requests})"
            rendered.append(q)
        if len(rendered) == 1:
            return rendered[0]
        if self.combine == "max" and self.output_labels:
            tagged = [
                f'label_replace({q}, "aiops_part", "{i}", "", "")' for i, q in enumerate(rendered)
            ]
            return f"max by ({', '.join(self.output_labels)}) ({' or '.join(tagged)})"
        return " or ".join(f"({q})" for q in rendered)

    def pass_query(self, window: str = "1m") -> PassForm:
        """The detection pass's form of `render(window=window)`, for a one-part signal: the
        part's shared query when it has one, else its PromQL without the label renames; the pass
        renames the answer by the form's (canonical, exporter's) pairs (aiops.detect.
        pass_answers). Why the renames move: Prometheus 2.x spends a third as long again on two
        label_replace over 20,000 series as on the rate under them (request_rate at 100,000
        series: 370 ms with, 250 without), and the pass renames in a few milliseconds. Several
        parts keep the PromQL renames: `or` and `max by` need the canonical labels to match."""
        if len(self.parts) != 1:
            return PassForm(self.render(window=window))
        part = self.parts[0]
        pairs = part.renamed_labels(self.output_labels)
        guard = part.guard if self.min_requests else None
        if part.shared is not None and guard is None and part.rename:
            output = self.output_labels or tuple(part.labels)
            every = tuple((c, part.labels.get(c, c)) for c in output)
            return PassForm(part.shared.render(window), every, part.shared)
        if not pairs or (guard is not None and guard.renamed_labels(self.output_labels) != pairs):
            return PassForm(self.render(window=window))
        q = part.render(self.output_labels, {}, {}, window, rename=False)
        if guard is not None:
            rate = guard.render(self.output_labels, {}, {}, window, rename=False)
            on = ", ".join(dict.fromkeys(s for _, s in pairs))
            seconds = duration_seconds(window)
            q = f"({q}) and on ({on}) (({rate}) * {seconds:g} >= {self.min_requests})"
        return PassForm(q, pairs)

    def render_for(self, namespace: str | None = None, window: str = "1m") -> str:
        """Render restricted to one namespace (ignored for cluster-scoped signals)."""
        filters = {self.namespace_label: namespace} if namespace and self.namespace_label else {}
        return self.render(filters, window)
