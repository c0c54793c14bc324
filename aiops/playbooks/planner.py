"""Pure matching and rendering: RcaReport + playbooks (+ observed facts, + the live signals) ->
RemediationPlan.

Only the top hypothesis is acted on. The first matching playbook (by priority, then id) that
renders cleanly wins; when none does, the plan is the built-in `escalate` with every reason why.
Conditions on signals (verification, preconditions) render into PromQL over the signals the
cluster's metric profiles feed; a playbook no live signal can verify is not used, and says why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aiops.domain import Hypothesis, RcaReport, RemediationPlan, RiskLevel, Step, Verification
from aiops.playbooks.actions import ACTIONS, K8S_NAME
from aiops.playbooks.conditions import Condition, ConditionError, render_condition
from aiops.playbooks.loader import PlaybookSet
from aiops.playbooks.models import (
    ESCALATE_ID,
    K8sCheck,
    Parameter,
    Playbook,
    Precondition,
    RoundMode,
    StepSpec,
)
from aiops.playbooks.template import MissingValueError, TemplateError, lookup, render
from aiops.profiles import Assembly, builtin_assembly

_NAME = re.compile(K8S_NAME)


class RenderError(ValueError):
    """This playbook cannot safely be rendered for this incident (the planner tries the next)."""


class Observed(BaseModel):
    """What the caller observed in the cluster about the target (the report does not carry it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replicas: int | None = Field(default=None, ge=0, description="current spec.replicas")
    pod: str | None = Field(default=None, description="the pod implicated, if one is")
    node: str | None = None


class RenderedCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    promql: str | None = None
    expect: Literal["non_empty", "empty"] = "non_empty"
    k8s: K8sCheck | None = None
    args: dict[str, Any] = Field(default_factory=dict)


class PlannedRemediation(BaseModel):
    """The plan plus what the domain plan has no field for: preconditions and parameter values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plan: RemediationPlan
    preconditions: list[RenderedCheck] = Field(default_factory=list)
    parameters: dict[str, int | float | str] = Field(default_factory=dict)
    skipped: list[str] = Field(
        default_factory=list, description="why other playbooks were not used"
    )


def choose_plan(
    report: RcaReport,
    playbooks: PlaybookSet | Iterable[Playbook],
    observed: Observed | None = None,
    signals: Assembly | None = None,
) -> RemediationPlan:
    return plan_remediation(report, playbooks, observed, signals).plan


def plan_remediation(
    report: RcaReport,
    playbooks: PlaybookSet | Iterable[Playbook],
    observed: Observed | None = None,
    signals: Assembly | None = None,
) -> PlannedRemediation:
    """`signals`: what the cluster's metric profiles feed (discovery); default: every part of
    every shipped profile."""
    books = (
        list(playbooks.playbooks.values())
        if isinstance(playbooks, PlaybookSet)
        else list(playbooks)
    )
    observed = observed or Observed()
    top = report.top
    if top is None:
        return _escalate(report, None, ["the report has no hypothesis to act on"])
    candidates = sorted(
        (pb for pb in books if top.fault in pb.matches.faults), key=lambda pb: (pb.priority, pb.id)
    )
    if not candidates:
        return _escalate(report, top, [f"no playbook handles fault '{top.fault.value}'"])
    skipped: list[str] = []
    for playbook in candidates:
        why_not = _mismatch(playbook, top, report, observed)
        if why_not:
            skipped.append(f"{playbook.id}: {why_not}")
            continue
        try:
            planned = render_playbook(playbook, report, top, observed, signals)
        except (RenderError, TemplateError) as exc:
            skipped.append(f"{playbook.id}: {exc}")
            continue
        return planned.model_copy(update={"skipped": skipped})
    return _escalate(report, top, skipped)


def _mismatch(playbook: Playbook, top: Hypothesis, report: RcaReport, observed: Observed) -> str:
    m = playbook.matches
    if top.target_kind not in m.target_kinds:
        kinds = ", ".join(k.value for k in m.target_kinds)
        return f"acts on {kinds}, not {top.target_kind}"
    if top.confidence < m.min_confidence:
        return f"confidence {top.confidence:.2f} is below its minimum {m.min_confidence:.2f}"
    if m.namespaces is not None and top.namespace not in m.namespaces:
        return f"namespace {top.namespace!r} is not one of {', '.join(m.namespaces)}"
    context = _context(report, top, observed, {})
    for name in m.require:
        try:
            lookup(context, name)
        except MissingValueError:
            return f"needs {name}, which is not known for this incident"
    return ""


def _pod_from_evidence(top: Hypothesis) -> str | None:
    for ev in top.evidence:
        if ev.kind == "pod" and ev.source:
            return ev.source.rstrip("/").rsplit("/", 1)[-1]
    return None


def _context(
    report: RcaReport, top: Hypothesis, observed: Observed, params: dict[str, Any]
) -> dict[str, Any]:
    node = observed.node or (top.target if top.target_kind == "Node" else None)
    return {
        "incident": {"id": report.incident_id},
        "target": {"name": top.target, "namespace": top.namespace, "kind": top.target_kind},
        "hypothesis": {"fault": top.fault.value, "confidence": top.confidence},
        "observed": {
            "replicas": observed.replicas,
            "pod": observed.pod or _pod_from_evidence(top),
            "node": node,
        },
        "params": params,
    }


def render_playbook(
    playbook: Playbook,
    report: RcaReport,
    top: Hypothesis,
    observed: Observed,
    signals: Assembly | None = None,
) -> PlannedRemediation:
    """Render one playbook for one hypothesis; raises RenderError when it cannot be done safely
    (or verified with the signals the cluster has)."""
    live = signals or builtin_assembly()
    params: dict[str, Any] = {}
    context = _context(report, top, observed, params)
    # Names from the report end up in PromQL label matchers and API paths: only plain Kubernetes
    # names may pass, so a crafted name cannot change what a query or a step means.
    for group, key in (
        ("target", "name"),
        ("target", "namespace"),
        ("observed", "pod"),
        ("observed", "node"),
    ):
        value = context[group][key]
        if value is not None and not _NAME.fullmatch(str(value)):
            raise RenderError(f"{group}.{key}={value!r} is not a valid Kubernetes name")
    for name, spec in playbook.parameters.items():
        params[name] = _parameter(name, spec, context, params)
    try:
        steps = [_step(s, context, observed, forward=True) for s in playbook.steps]
        compensation = [_step(s, context, observed, forward=False) for s in playbook.compensation]
        checks = [c for p in playbook.preconditions if (c := _check(p, context, live)) is not None]
        query, verified_by = _verification(playbook, context, live)
    except MissingValueError as exc:
        raise RenderError(str(exc)) from exc
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    where = f"{top.namespace}/{top.target}" if top.namespace else top.target
    rationale = (
        f"{top.fault.value} on {top.target_kind} {where} (confidence {top.confidence:.2f}): "
        f"playbook {playbook.id}: {playbook.description.strip()}"
        + (f" Parameters: {shown}." if shown else "")
        + (f" Verified by: {verified_by}." if verified_by else "")
    )
    plan = RemediationPlan(
        incident_id=report.incident_id,
        playbook_id=playbook.id,
        namespace=top.namespace,
        target=top.target,
        risk=playbook.risk,
        steps=steps,
        compensation=compensation,
        verification=Verification(
            query=str(query),
            hold_for_s=playbook.verification.hold_for,
            timeout_s=playbook.verification.timeout,
        ),
        rationale=rationale,
    )
    return PlannedRemediation(plan=plan, preconditions=checks, parameters=dict(params))


def _condition(cond: Condition, context: dict[str, Any], live: Assembly) -> str | None:
    """The condition's PromQL for the target, or None (an optional one the cluster cannot
    judge); RenderError when a required one cannot be judged here, with the reason."""
    bound = render(cond.bound, context) if isinstance(cond.bound, str) else cond.bound
    if isinstance(bound, bool) or not isinstance(bound, int | float):
        raise RenderError(f"{cond.signal}: the bound {bound!r} is not a number")
    try:
        return render_condition(cond, live.by_name(), context["target"], float(bound))
    except ConditionError as exc:
        why = f"{exc}: {live.why_not(cond.signal)}" if cond.signal not in live.by_name() else exc
        raise RenderError(f"cannot check {cond.describe(bound)} ({why})") from exc


def _check(pre: Precondition, context: dict[str, Any], live: Assembly) -> RenderedCheck | None:
    if pre.condition is not None:
        promql = _condition(pre.condition, context, live)
        if promql is None:
            return None
        return RenderedCheck(description=pre.description or pre.condition.describe(), promql=promql)
    return RenderedCheck(
        description=pre.description,
        promql=render(pre.promql, context) if pre.promql is not None else None,
        expect=pre.expect,
        k8s=pre.k8s,
        args=render(pre.args, context),
    )


def _verification(playbook: Playbook, context: dict[str, Any], live: Assembly) -> tuple[str, str]:
    """(the verification's PromQL, the conditions it checks in words)."""
    spec = playbook.verification
    if spec.conditions is None:
        return str(render(spec.query, context)), ""
    queries: list[str] = []
    used: list[str] = []
    left_out: list[str] = []
    for cond in spec.conditions:
        promql = _condition(cond, context, live)
        if promql is None:
            left_out.append(f"{cond.signal} ({live.why_not(cond.signal)})")
            continue
        queries.append(promql)
        used.append(cond.describe())
    if not queries:
        raise RenderError("no signal this cluster has can verify it: " + "; ".join(left_out))
    words = ", ".join(used) + (f"; not measured here: {', '.join(left_out)}" if left_out else "")
    return " and on() ".join(queries), words


def _parameter(
    name: str, spec: Parameter, context: dict[str, Any], params: dict[str, Any]
) -> int | float | str:
    value: Any = spec.default
    if spec.source is not None:
        try:
            value = lookup(context, spec.source)
        except MissingValueError as exc:
            if spec.default is None:
                raise RenderError(f"parameter {name}: {exc}") from exc
    if spec.type == "str":
        text = str(value)
        if spec.choices is None or text not in spec.choices:
            raise RenderError(f"parameter {name}={text!r} is not one of {spec.choices}")
        return text
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RenderError(f"parameter {name}: {value!r} is not a number")
    number = float(value)
    if spec.multiply_by is not None:
        factor = params[spec.multiply_by] if isinstance(spec.multiply_by, str) else spec.multiply_by
        number *= float(factor)
    if spec.type == "int":
        number = float(_round(number, spec.round))
    low, high = spec.min, spec.max
    if low is None or high is None:  # Parameter validation makes numeric parameters bounded
        raise RenderError(f"parameter {name} has no bounds")
    if not low <= number <= high:
        if not spec.clamp:
            raise RenderError(
                f"parameter {name}={number:g} is outside its bounds [{low:g}, {high:g}]"
            )
        number = min(max(number, low), high)
    return int(number) if spec.type == "int" else number


def _round(value: float, mode: RoundMode) -> int:
    # A small epsilon so that 3 * 1.1 = 3.3000000000000003 does not ceil to 4 by accident.
    if mode is RoundMode.CEIL:
        return math.ceil(value - 1e-9)
    if mode is RoundMode.FLOOR:
        return math.floor(value + 1e-9)
    return round(value)


def _step(spec: StepSpec, context: dict[str, Any], observed: Observed, *, forward: bool) -> Step:
    action = ACTIONS[spec.action]
    args = render(spec.args, context)
    args.setdefault("kind", action.kind)
    types = {**action.required, **action.optional}
    for arg, value in args.items():
        want = types.get(arg)
        if want == "name" and not (isinstance(value, str) and _NAME.fullmatch(value)):
            raise RenderError(f"{spec.action}: {arg}={value!r} is not a valid Kubernetes name")
        if want == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise RenderError(f"{spec.action}: {arg}={value!r} is not an integer")
    if forward and spec.action == "k8s.scale" and args["replicas"] == observed.replicas:
        raise RenderError(
            f"the deployment already runs {observed.replicas} replicas: scaling cannot help"
        )
    return Step(action=spec.action, args=args, description=spec.description)


def _escalate(report: RcaReport, top: Hypothesis | None, reasons: list[str]) -> PlannedRemediation:
    plan = RemediationPlan(
        incident_id=report.incident_id,
        playbook_id=ESCALATE_ID,
        namespace=top.namespace if top else None,
        target=top.target if top else None,
        risk=RiskLevel.LOW,
        rationale="escalated to a human: " + "; ".join(reasons),
    )
    return PlannedRemediation(plan=plan, skipped=reasons)


def escalation(report: RcaReport, reason: str) -> RemediationPlan:
    """The built-in `escalate` plan for this report, e.g. when a precondition fails."""
    return _escalate(report, report.top, [reason]).plan
