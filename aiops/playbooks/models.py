"""The playbook schema: what a playbook file may say, checked completely at load.

A playbook that loads is one that can be rendered for any incident it matches without guessing:
every template names a field that exists, every parameter is typed and bounded, and every step is
an allow-listed action with the arguments that action takes.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from aiops.domain import FaultType, RiskLevel
from aiops.domain.yamlsource import parse_duration
from aiops.playbooks.actions import ACTIONS, ArgType
from aiops.playbooks.conditions import OPERATORS, Condition
from aiops.playbooks.template import TemplateError, all_references

ESCALATE_ID = "escalate"
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_PARAM = re.compile(r"^[a-z][a-z0-9_]*$")

Seconds = Annotated[float, BeforeValidator(parse_duration)]

# Fields every template may name, with the type each renders to. `params.<name>` is added per
# playbook from its declared parameters.
BASE_FIELDS: dict[str, ArgType] = {
    "incident.id": "str",
    "target.name": "name",
    "target.namespace": "name",
    "target.kind": "str",
    "hypothesis.fault": "str",
    "hypothesis.confidence": "float",
    "observed.replicas": "int",
    "observed.pod": "name",
    "observed.node": "name",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetKind(StrEnum):
    DEPLOYMENT = "Deployment"
    NODE = "Node"
    SERVICE = "Service"


class Match(Strict):
    """When a playbook applies to the top hypothesis of an RcaReport."""

    faults: list[FaultType] = Field(min_length=1)
    target_kinds: list[TargetKind] = Field(default_factory=lambda: [TargetKind.DEPLOYMENT])
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    namespaces: list[str] | None = Field(
        default=None, description="only these namespaces (default: any namespace)"
    )
    require: list[str] = Field(
        default_factory=list,
        description="template fields that must be known, e.g. observed.pod",
    )

    @model_validator(mode="after")
    def _known_requirements(self) -> Match:
        for name in self.require:
            if name not in BASE_FIELDS:
                raise ValueError(
                    f"require names unknown field '{name}'; known: {', '.join(sorted(BASE_FIELDS))}"
                )
        return self


class RoundMode(StrEnum):
    CEIL = "ceil"
    FLOOR = "floor"
    NEAREST = "nearest"


class Parameter(Strict):
    """A typed, bounded value computed from the report: `source` times `multiply_by`, rounded.

    Out-of-range values are refused (the plan escalates) unless `clamp` is set, in which case they
    are pulled to the nearest bound (`max` then acts as a ceiling).
    """

    type: Literal["int", "float", "str"]
    description: str = ""
    min: float | None = None
    max: float | None = None
    choices: list[str] | None = None
    default: int | float | str | None = None
    source: str | None = Field(default=None, description="a template field, e.g. observed.replicas")
    multiply_by: float | str | None = Field(
        default=None, description="a number, or the name of an earlier parameter"
    )
    round: RoundMode = RoundMode.CEIL
    clamp: bool = False

    @model_validator(mode="after")
    def _bounded(self) -> Parameter:
        if self.type in ("int", "float"):
            if self.min is None or self.max is None:
                raise ValueError(
                    f"unbounded parameter: a numeric ({self.type}) parameter needs both min and max"
                )
            if self.min > self.max:
                raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
            if self.choices is not None:
                raise ValueError("choices apply to str parameters only")
            if isinstance(self.default, str):
                raise ValueError(f"default must be a number for a {self.type} parameter")
            if self.default is not None and not self.min <= float(self.default) <= self.max:
                raise ValueError(f"default {self.default} is outside [{self.min}, {self.max}]")
        else:
            if not self.choices:
                raise ValueError("unbounded parameter: a str parameter needs a list of choices")
            if self.min is not None or self.max is not None or self.multiply_by is not None:
                raise ValueError("min, max and multiply_by apply to numeric parameters only")
            if self.default is not None and self.default not in self.choices:
                raise ValueError(f"default {self.default!r} is not one of the choices")
        if self.source is None and self.default is None:
            raise ValueError("a parameter needs a source or a default")
        if self.source is not None and self.source not in BASE_FIELDS:
            raise ValueError(
                f"source names unknown field '{self.source}'; known: "
                f"{', '.join(sorted(BASE_FIELDS))}"
            )
        return self


class K8sCheck(StrEnum):
    DEPLOYMENT_EXISTS = "deployment_exists"
    DEPLOYMENT_HAS_PREVIOUS_REVISION = "deployment_has_previous_revision"
    POD_EXISTS = "pod_exists"
    NODE_EXISTS = "node_exists"
    NODE_READY = "node_ready"
    OTHER_NODES_SCHEDULABLE = "other_nodes_schedulable"


_CONDITION_FIELDS = frozenset(Condition.model_fields)


class Precondition(Strict):
    """A check that must pass before any step runs: a condition on a signal (`signal` with
    below/above/at_most/at_least, as in a verification), a Kubernetes check, or PromQL (which
    ties the playbook to one kind of exporter)."""

    description: str = ""
    condition: Condition | None = None
    k8s: K8sCheck | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    promql: str | None = None
    expect: Literal["non_empty", "empty"] = "non_empty"

    @model_validator(mode="before")
    @classmethod
    def _inline_condition(cls, data: Any) -> Any:
        """`signal: x, at_least: 1` written in the precondition itself."""
        if isinstance(data, dict) and "signal" in data:
            data = dict(data)
            data["condition"] = {k: data.pop(k) for k in list(data) if k in _CONDITION_FIELDS}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> Precondition:
        kinds = [k for k in ("condition", "k8s", "promql") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a precondition has exactly one of signal, k8s or promql")
        if self.k8s is None and self.args:
            raise ValueError("args apply to k8s checks only")
        return self


class StepSpec(Strict):
    action: str
    args: dict[str, Any] = Field(default_factory=dict)
    description: str = ""

    @model_validator(mode="after")
    def _allow_listed(self) -> StepSpec:
        spec = ACTIONS.get(self.action)
        if spec is None:
            raise ValueError(
                f"unknown action '{self.action}'; allowed actions: {', '.join(sorted(ACTIONS))}"
            )
        allowed = {**spec.required, **spec.optional, "kind": "str"}
        for name in self.args:
            if name not in allowed:
                raise ValueError(
                    f"{self.action} takes no argument '{name}'; it takes: "
                    f"{', '.join(sorted(allowed))}"
                )
        missing = [name for name in spec.required if name not in self.args]
        if missing:
            raise ValueError(f"{self.action} needs argument(s): {', '.join(missing)}")
        kind = self.args.get("kind", spec.kind)
        if kind != spec.kind:
            raise ValueError(f"{self.action} acts on kind {spec.kind}, not {kind}")
        return self


class VerificationSpec(Strict):
    """What must hold, continuously for `hold_for`, within `timeout`: every condition on the
    target's signals (portable across metric profiles), or one PromQL query (tied to the
    exporter it names) that must return a non-empty result."""

    conditions: list[Condition] | None = Field(default=None, min_length=1)
    query: str | None = Field(default=None, min_length=1)
    hold_for: Seconds = Field(default=60.0, gt=0)
    timeout: Seconds = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _window_fits(self) -> VerificationSpec:
        if (self.conditions is None) == (self.query is None):
            raise ValueError("a verification has exactly one of conditions or query")
        if self.hold_for > self.timeout:
            raise ValueError(
                f"hold_for ({self.hold_for:g}s) is longer than timeout ({self.timeout:g}s): "
                "the condition could never be verified"
            )
        return self


class Playbook(Strict):
    id: str
    description: str = Field(min_length=1)
    risk: RiskLevel
    priority: int = Field(default=100, description="lower wins when several playbooks match")
    matches: Match
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    preconditions: list[Precondition] = Field(default_factory=list)
    steps: list[StepSpec] = Field(min_length=1)
    verification: VerificationSpec
    compensation: list[StepSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Playbook:
        if not _KEBAB.fullmatch(self.id):
            raise ValueError(f"id '{self.id}' must be kebab-case, e.g. restart-deployment")
        if self.id == ESCALATE_ID:
            raise ValueError("'escalate' is built in and cannot be defined by a file")
        earlier: list[str] = []
        for name, param in self.parameters.items():
            if not _PARAM.fullmatch(name):
                raise ValueError(
                    f"parameter name '{name}' must be lower_snake_case starting with a letter"
                )
            if isinstance(param.multiply_by, str) and param.multiply_by not in earlier:
                raise ValueError(
                    f"parameter '{name}' multiplies by '{param.multiply_by}', which is not a "
                    "parameter declared before it"
                )
            earlier.append(name)
        return self

    def conditions(self) -> list[tuple[str, Condition]]:
        """Every condition on a signal, with where it is written."""
        out = [
            (f"preconditions[{i}]", p.condition)
            for i, p in enumerate(self.preconditions)
            if p.condition is not None
        ]
        out += [
            (f"verification.conditions[{i}]", c)
            for i, c in enumerate(self.verification.conditions or [])
        ]
        return out

    def template_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Templates naming missing fields or giving an argument the wrong type, by location."""
        return template_problems(self.model_dump(mode="json"))


Problem = tuple[tuple[str | int, ...], str]


def template_problems(data: Any) -> list[Problem]:
    """The template checks over raw playbook data, so that they also run (and report) when
    other parts of the file fail schema validation."""
    if not isinstance(data, dict):
        return []
    fields: dict[str, ArgType] = dict(BASE_FIELDS)
    params = data.get("parameters")
    if isinstance(params, dict):
        for name, param in params.items():
            kind = param.get("type") if isinstance(param, dict) else None
            fields[f"params.{name}"] = kind if kind in ("int", "float", "str") else "str"
    problems: list[Problem] = []

    def check(path: tuple[str | int, ...], value: Any) -> list[str]:
        try:
            refs = all_references(value)
        except TemplateError as exc:
            problems.append((path, str(exc)))
            return []
        for ref in refs:
            if ref not in fields:
                problems.append(
                    (
                        path,
                        f"template names missing field '{ref}'; available: "
                        f"{', '.join(sorted(fields))}",
                    )
                )
        return refs

    for group in ("steps", "compensation"):
        for i, step in enumerate(_items(data.get(group))):
            spec = ACTIONS.get(str(step.get("action")))
            types = {**spec.required, **spec.optional} if spec else {}
            args = step.get("args")
            for arg, value in args.items() if isinstance(args, dict) else []:
                path = (group, i, "args", arg)
                refs = check(path, value)
                problem = _type_problem(types.get(arg), value, refs, fields)
                if problem:
                    problems.append((path, problem))
    for i, pre in enumerate(_items(data.get("preconditions"))):
        if isinstance(pre.get("promql"), str):
            check(("preconditions", i, "promql"), pre["promql"])
        args = pre.get("args")
        for arg, value in args.items() if isinstance(args, dict) else []:
            check(("preconditions", i, "args", arg), value)
    verification = data.get("verification")
    if isinstance(verification, dict) and isinstance(verification.get("query"), str):
        check(("verification", "query"), verification["query"])
    conditions: list[tuple[tuple[str | int, ...], dict[str, Any]]] = [
        (("preconditions", i), pre)
        for i, pre in enumerate(_items(data.get("preconditions")))
        if "signal" in pre
    ]
    if isinstance(verification, dict):
        conditions += [
            (("verification", "conditions", i), cond)
            for i, cond in enumerate(_items(verification.get("conditions")))
        ]
    for where, cond in conditions:
        for key in OPERATORS:
            if isinstance(cond.get(key), str):
                refs = check((*where, key), cond[key])
                whole = len(refs) == 1 and str(cond[key]).strip().startswith("{{")
                if refs and not (whole and fields.get(refs[0]) in ("int", "float")):
                    problems.append(
                        ((*where, key), "must be a number, or a single reference to a number")
                    )
    return problems


def _items(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item if isinstance(item, dict) else {} for item in value]


def _type_problem(
    want: ArgType | None, value: Any, refs: list[str], fields: dict[str, ArgType]
) -> str | None:
    if want is None or any(ref not in fields for ref in refs):
        return None  # an unknown reference is reported once, as a missing field
    whole = isinstance(value, str) and len(refs) == 1 and value.strip().startswith("{{")
    whole = whole and value.strip().endswith("}}")
    if want == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        if whole and fields.get(refs[0]) == "int":
            return None
        return "must be an integer, or a single reference to an int parameter"
    if not isinstance(value, str):
        return "must be a string"
    return None
