"""Conditions on signals: what a playbook's verification and preconditions say instead of PromQL,
so that the same playbook verifies on any metric profile.

A condition names a signal of the vocabulary (aiops/profiles) and a bound. For the plan's target
it holds when the signal has at least one series with a value for the target and every such
series is within the bound: a series that never existed, went stale or has no value (a ratio over
zero requests) is not evidence that a fix worked. An `optional` condition whose signal the
cluster cannot feed, or that has no series for the target, is left out (an error ratio where no
request metrics exist); a required one makes the playbook refuse, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiops.profiles.signal import Signal

Comparison = Literal["below", "above", "at_most", "at_least"]
OPERATORS: dict[Comparison, str] = {"below": "<", "above": ">", "at_most": "<=", "at_least": ">="}
# What breaks each bound (NaN breaks none: a comparison with NaN is false).
VIOLATED: dict[Comparison, str] = {"below": ">=", "above": "<=", "at_most": ">", "at_least": "<"}
# Pods of a Deployment are <deployment>-<pod-template-hash>-<suffix>.
POD_OF = "{name}-[a-z0-9]+-[a-z0-9]+"
TARGET_ENTITIES: dict[str, frozenset[str]] = {
    "Deployment": frozenset({"workload", "pod", "deployment"}),
    "Service": frozenset({"workload", "pod", "deployment"}),
    "Node": frozenset({"node"}),
}


class ConditionError(ValueError):
    """The condition cannot be rendered for this target (the playbook is not used)."""


class Condition(BaseModel):
    """`signal` of the target compared with a bound (a number or a template such as
    "{{ params.replicas }}"), over `window` for signals that take one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    below: float | str | None = None
    above: float | str | None = None
    at_most: float | str | None = None
    at_least: float | str | None = None
    window: str = Field(default="2m", pattern=r"^(\d+(ms|s|m|h|d|w|y))+$")
    scope: Literal["target", "cluster"] = Field(
        default="target", description="the plan's target, or the whole cluster"
    )
    optional: bool = Field(
        default=False,
        description="left out where the cluster has no series of the signal for the target",
    )

    @model_validator(mode="after")
    def _one_bound(self) -> Condition:
        given = [c for c in OPERATORS if getattr(self, c) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a condition on {self.signal} has exactly one of below, above, at_most, "
                f"at_least (got {', '.join(given) or 'none'})"
            )
        bound = getattr(self, given[0])
        if isinstance(bound, str) and "{{" not in bound:
            raise ValueError(
                f"{given[0]} must be a number or a template such as {{{{ params.replicas }}}}, "
                f"not {bound!r}"
            )
        return self

    @property
    def comparison(self) -> Comparison:
        return next(c for c in OPERATORS if getattr(self, c) is not None)

    @property
    def bound(self) -> float | str:
        value: float | str = getattr(self, self.comparison)
        return value

    def describe(self, bound: float | str | None = None) -> str:
        b = self.bound if bound is None else bound
        shown = f"{b:g}" if isinstance(b, float | int) else str(b)
        text = f"{self.signal} {OPERATORS[self.comparison]} {shown}"
        extra = [f"over {self.window}"] if self.window != "2m" else []
        if self.scope == "cluster":
            extra.append("cluster-wide")
        if self.optional:
            extra.append("where measured")
        return text + (f" ({', '.join(extra)})" if extra else "")


def target_filters(
    signal: Signal, kind: str, namespace: str | None, name: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(equality, regex) matchers in the signal's canonical labels selecting the target."""
    if signal.entity not in TARGET_ENTITIES.get(kind, frozenset()):
        raise ConditionError(
            f"signal {signal.name} is about {signal.entity}s, not about a {kind}: it cannot "
            f"judge the target"
        )
    eq: dict[str, str] = {}
    regex: dict[str, str] = {}
    if signal.namespace_label and namespace:
        eq[signal.namespace_label] = namespace
    if signal.entity == "pod":
        regex[signal.entity_label] = POD_OF.format(name=name)
    else:
        eq[signal.entity_label] = name
    return eq, regex


def render_condition(
    cond: Condition,
    signals: Mapping[str, Signal],
    target: Mapping[str, Any],
    bound: float,
) -> str | None:
    """PromQL that returns a sample while the condition holds; None when an optional condition
    is left out. Raises ConditionError when a required one cannot be judged here."""
    signal = signals.get(cond.signal)
    if signal is None:
        if cond.optional:
            return None
        raise ConditionError(f"signal {cond.signal} is not live here")
    if cond.scope == "cluster":
        eq: dict[str, str] = {}
        regex: dict[str, str] = {}
    else:
        eq, regex = target_filters(
            signal, str(target["kind"]), target.get("namespace"), str(target["name"])
        )
    query = signal.render(eq, cond.window, regex=regex)
    # No series of the target breaks the bound, and (unless optional) at least one has a value:
    # `>= -Inf` drops NaN (a ratio over zero requests), as no value is no evidence.
    broken = f"count(({query}) {VIOLATED[cond.comparison]} {bound:g})"
    evidence = "vector(1)" if cond.optional else f"count(({query}) >= -Inf)"
    return f"({evidence} unless on() {broken})"


def signal_problems(
    playbook_id: str,
    conditions: list[tuple[str, Condition]],
    target_kinds: list[str],
    entities: Mapping[str, str],
) -> list[str]:
    """Conditions naming a signal nobody defines, or one about other entities than the
    playbook's targets. `entities`: signal name -> its entity, for every known signal."""
    problems: list[str] = []
    for where, cond in conditions:
        entity = entities.get(cond.signal)
        if entity is None:
            problems.append(
                f"{playbook_id}: {where}: unknown signal {cond.signal!r}; known: "
                f"{', '.join(sorted(entities))}"
            )
            continue
        if cond.scope == "cluster":
            continue
        wrong = [k for k in target_kinds if entity not in TARGET_ENTITIES.get(k, frozenset())]
        if wrong:
            problems.append(
                f"{playbook_id}: {where}: signal {cond.signal} is about {entity}s, which cannot "
                f"judge a {' or '.join(wrong)} target (use scope: cluster, or another signal)"
            )
    return problems
