"""What a metric-profile file and the signal vocabulary may say.

The vocabulary (`builtin/signals.yaml`) says what each signal means: the entity its series are
about, its unit, which way is bad and how small a change is noise. A profile (`builtin/*.yaml`,
or a user's own file) says how one kind of exporter computes some of them: a PromQL template, the
exporter's labels for the canonical ones, and the metric families it needs. A profile may also
define a signal of its own (then with the vocabulary's fields); it never changes the meaning of
one the vocabulary defines.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiops.domain.models import Direction
from aiops.profiles.signal import (
    CANONICAL_LABELS,
    Entity,
    Group,
    Load,
    SharedQuery,
    check_template,
    load_fits_entity,
    parse_need,
    persists_a_bad_way,
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PROFILE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_METRIC = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")

#: The label naming the entity when a signal does not say otherwise.
ENTITY_LABEL: dict[str, str] = {
    "workload": "workload",
    "pod": "pod",
    "deployment": "deployment",
    "node": "node",
    "edge": "server",
    "namespace": "namespace",
}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SignalSpec(_Strict):
    """What a signal means, whichever exporter computes it."""

    entity: Entity
    entity_label: str | None = Field(default=None, description="default: by entity")
    unit: str
    direction: Direction
    description: str = Field(min_length=1)
    group: Group = "custom"
    namespaced: bool = True
    min_delta: float = Field(default=0.0, ge=0.0)
    min_ratio: float = Field(default=1.0, ge=1.0)
    seed_new_series: bool = True
    detect: bool = True
    min_requests: int = Field(default=0, ge=0)
    combine: Literal["first", "max"] = "first"
    persists: Direction | None = None
    load: Load | None = None

    _persists = field_validator("persists")(persists_a_bad_way)
    _load = field_validator("load")(load_fits_entity)

    def label(self) -> str:
        return self.entity_label or ENTITY_LABEL.get(self.entity, "entity")

    def signal_fields(self) -> dict[str, Any]:
        """The Signal fields this spec gives."""
        data = self.model_dump(exclude={"entity_label", "namespaced"})
        data["entity_label"] = self.label()
        data["namespace_label"] = "namespace" if self.namespaced else None
        return data


SPEC_FIELDS = frozenset(SignalSpec.model_fields)


class Vocabulary(_Strict):
    signals: dict[str, SignalSpec]

    @field_validator("signals")
    @classmethod
    def _names(cls, v: dict[str, SignalSpec]) -> dict[str, SignalSpec]:
        for name in v:
            if not _NAME.fullmatch(name):
                raise ValueError(f"signal name {name!r} must be snake_case (a-z, 0-9, _)")
        return v


class ProfilePart(_Strict):
    """One way a profile computes a signal."""

    query: str
    needs: list[str | list[str]] = Field(
        min_length=1,
        description="metric families read: each entry a family (optionally with labels it "
        "must carry, family{label,...}), or a list of alternatives",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="canonical label -> the exporter's label; unlisted ones are the same",
    )
    view: str = Field(default="", description="what this part sees, e.g. the callers' side")
    shared: SharedQuery | None = Field(
        default=None,
        description="the detection pass's cheaper form: a request signal split out of one "
        "answer shared with the others (aiops.profiles.signal.SharedQuery)",
    )

    @field_validator("query")
    @classmethod
    def _template(cls, v: str) -> str:
        return check_template(v)

    @model_validator(mode="after")
    def _needs_cover_query(self) -> ProfilePart:
        for need in self.flat_needs():
            parse_need(need)
        declared = {parse_need(n)[0] for n in self.flat_needs()}
        shared = self.shared.query if self.shared is not None else ""
        for which, query in (("query", self.query), ("shared query", shared)):
            for metric in _METRIC.findall(query):
                if metric not in declared and family_of(metric) not in declared:
                    raise ValueError(
                        f"the {which} reads {metric}, which needs does not list; add "
                        f"{family_of(metric)} to needs"
                    )
        return self

    def flat_needs(self) -> list[str]:
        return [n for entry in self.needs for n in ([entry] if isinstance(entry, str) else entry)]

    def need_groups(self) -> tuple[tuple[str, ...], ...]:
        return tuple((e,) if isinstance(e, str) else tuple(e) for e in self.needs)


class EdgeSource(_Strict):
    """Where a profile keeps the service graph per caller → callee, and what each side measured
    (the agent's edge ranking reads it): metric and label names, and the matchers that pick the
    caller's view or the callee's. Histograms by base name (_sum, _count, _bucket appended)."""

    name: str = Field(description="e.g. istio, otel-servicegraph")
    needs: list[str] = Field(min_length=1, description="metric families it reads")
    caller: str = Field(description="label naming the calling workload")
    callee: str
    namespace: str | None = Field(description="label of the callee's namespace; null: none")
    requests: str = Field(description="the call counter")
    client_histogram: str = Field(description="what the caller waited")
    client_matchers: str = ""
    server_histogram: str = Field(description="what the callee spent")
    server_matchers: str = ""
    client_requests: str = Field(default="", description="matchers: calls as the caller saw them")
    client_failed: str = Field(default="", description="matchers: failed calls, the caller's view")
    server_requests: str = ""
    server_failed: str = ""
    failed_counter: str | None = Field(default=None, description="a separate failed-calls counter")
    to_seconds: float = Field(default=1.0, gt=0, description="the histograms' unit in seconds")


class Profile(_Strict):
    """How one kind of exporter computes signals."""

    profile: str = Field(description="kebab-case name, e.g. istio")
    description: str = Field(min_length=1)
    docs: list[str] = Field(default_factory=list, description="where the names come from")
    order: int = Field(default=100, description="lower first: whose series win a `first` signal")
    signals: dict[str, list[ProfilePart]] = Field(description="signal -> its parts")
    defines: dict[str, SignalSpec] = Field(
        default_factory=dict, description="signals of its own, not in the vocabulary"
    )
    edges: EdgeSource | None = Field(default=None, description="its service graph, if it has one")

    @field_validator("profile")
    @classmethod
    def _kebab(cls, v: str) -> str:
        if not _PROFILE.fullmatch(v):
            raise ValueError(f"profile name {v!r} must be kebab-case, e.g. my-exporter")
        return v

    @model_validator(mode="after")
    def _names(self) -> Profile:
        for name in self.signals:
            if not _NAME.fullmatch(name):
                raise ValueError(f"signal name {name!r} must be snake_case (a-z, 0-9, _)")
        return self

    def families(self) -> set[str]:
        return {
            parse_need(n)[0]
            for parts in self.signals.values()
            for p in parts
            for n in p.flat_needs()
        }


def family_of(series_name: str) -> str:
    """The family a series name belongs to: a histogram's _bucket/_count/_sum are its own."""
    for suffix in _HISTOGRAM_SUFFIXES:
        if series_name.endswith(suffix):
            return series_name[: -len(suffix)]
    return series_name


def check_part_labels(entity: str, part: ProfilePart) -> list[str]:
    """Problems of a part's label map against its signal's entity: a mapped label that is not
    one of the entity's canonical labels."""
    canonical = CANONICAL_LABELS.get(entity)
    if canonical is None:
        return []
    return [
        f"labels maps {k!r}, which {entity} signals do not have (they have {', '.join(canonical)})"
        for k in part.labels
        if k not in canonical
    ]
