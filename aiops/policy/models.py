"""The policy schema: what may be touched, how far, how often, when, and who must agree.

An empty policy denies everything: nothing is allowed unless an `allow` rule names it. Protected
namespaces (kube-system, kube-public, kube-node-lease, plus any listed) are never touched; taking
one of the defaults off that list needs an explicit `unprotect` entry with a reason.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from aiops.domain import RiskLevel, TimeoutAction
from aiops.domain.yamlsource import parse_duration
from aiops.policy.identities import FrontDoor, Identity
from aiops.policy.schedule import WEEKDAYS, parse_cron, parse_hhmm

# The allow-listed actions and the kind each acts on (mirrors aiops/playbooks/actions.py; the
# policy may import only the domain, and a test keeps the two lists equal).
ACTION_KINDS: dict[str, str] = {
    "k8s.rollout_restart": "Deployment",
    "k8s.scale": "Deployment",
    "k8s.rollout_undo": "Deployment",
    "k8s.delete_pod": "Pod",
    "k8s.cordon": "Node",
    "k8s.drain": "Node",
}
NAMESPACED_KINDS = frozenset({"Deployment", "Pod"})
DEFAULT_PROTECTED = ("kube-system", "kube-public", "kube-node-lease")
RISK_ORDER = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2}

Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Kind(StrEnum):
    DEPLOYMENT = "Deployment"
    POD = "Pod"
    NODE = "Node"


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class SelectorRequirement(Strict):
    key: str
    operator: SelectorOperator
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit(self) -> SelectorRequirement:
        needs = self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if needs and not self.values:
            raise ValueError(f"operator {self.operator.value} needs a non-empty values list")
        if not needs and self.values:
            raise ValueError(f"operator {self.operator.value} takes no values")
        return self


class LabelSelector(Strict):
    """A Kubernetes label selector over the target's labels."""

    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    match_expressions: list[SelectorRequirement] = Field(
        default_factory=list, alias="matchExpressions"
    )

    @model_validator(mode="after")
    def _not_empty(self) -> LabelSelector:
        if not self.match_labels and not self.match_expressions:
            raise ValueError(
                "an empty selector would match everything: give matchLabels or "
                "matchExpressions, or remove the selector"
            )
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator is SelectorOperator.IN and labels.get(req.key) not in req.values:
                return False
            if (
                req.operator is SelectorOperator.NOT_IN
                and present
                and labels[req.key] in req.values
            ):
                return False
            if req.operator is SelectorOperator.EXISTS and not present:
                return False
            if req.operator is SelectorOperator.DOES_NOT_EXIST and present:
                return False
        return True

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels.items()]
        parts += [
            f"{r.key} {r.operator.value} ({', '.join(r.values)})".replace(" ()", "")
            for r in self.match_expressions
        ]
        return ", ".join(parts)


class Rule(Strict):
    """Which actions on which kinds in which namespaces (glob patterns) on which labels."""

    name: str = Field(min_length=1)
    actions: list[str] = Field(min_length=1)
    kinds: list[Kind] | None = Field(default=None, description="default: the kinds of the actions")
    namespaces: list[str] = Field(default_factory=list)
    selector: LabelSelector | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        for action in self.actions:
            if action not in ACTION_KINDS:
                raise ValueError(
                    f"unknown action '{action}'; known actions: {', '.join(sorted(ACTION_KINDS))}"
                )
        for action in self.actions:
            if ACTION_KINDS[action] not in self.effective_kinds():
                raise ValueError(
                    f"{action} acts on {ACTION_KINDS[action]}, which this rule's kinds do not list"
                )
        namespaced = any(k in NAMESPACED_KINDS for k in self.effective_kinds())
        if namespaced and not self.namespaces:
            raise ValueError(
                "a rule for namespaced kinds (Deployment, Pod) must list its namespaces"
            )
        if not namespaced and self.namespaces:
            raise ValueError("Nodes have no namespace: remove namespaces from this rule")
        return self

    def effective_kinds(self) -> set[str]:
        if self.kinds is not None:
            return {k.value for k in self.kinds}
        return {ACTION_KINDS[a] for a in self.actions if a in ACTION_KINDS}

    def covers_namespace(self, namespace: str | None) -> bool:
        if namespace is None:
            return not self.namespaces
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces)

    def scope(self) -> tuple[object, ...]:
        selector = self.selector.model_dump(mode="json") if self.selector else None
        return (
            frozenset(self.actions),
            frozenset(self.effective_kinds()),
            frozenset(self.namespaces),
            json.dumps(selector, sort_keys=True),
        )


class Unprotect(Strict):
    namespace: str
    reason: str = Field(min_length=10, description="why this namespace may be touched")


class ScaleBounds(Strict):
    max_factor: float = Field(default=2.0, ge=1.0, le=10.0, description="new <= current * this")
    ceiling: int = Field(default=20, ge=1, description="never more replicas than this")
    min_replicas: int = Field(default=1, ge=0, description="never fewer replicas than this")

    @model_validator(mode="after")
    def _ordered(self) -> ScaleBounds:
        if self.min_replicas > self.ceiling:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above the ceiling ({self.ceiling})"
            )
        return self


class Bounds(Strict):
    scale: ScaleBounds = Field(default_factory=ScaleBounds)
    respect_pdb: bool = Field(
        default=True, description="never take a workload below its PodDisruptionBudget"
    )


class Budgets(Strict):
    per_namespace_per_hour: int = Field(default=5, ge=0)
    per_cluster_per_hour: int = Field(default=20, ge=0)
    cooldown_per_target: Seconds = Field(default=900.0, ge=0)
    max_failures_per_target: int = Field(
        default=2, ge=1, description="after this many failed remediations, stop and escalate"
    )
    failure_window: Seconds = Field(default=86400.0, gt=0)


class WindowEffect(StrEnum):
    DENY = "deny"
    REQUIRE_APPROVAL = "require_approval"


class MaintenanceWindow(Strict):
    """A time (UTC) when automatic remediation pauses or needs a human."""

    name: str = Field(min_length=1)
    effect: WindowEffect = WindowEffect.DENY
    days: list[str] | None = None
    start: str | None = None
    end: str | None = None
    cron: str | None = None
    duration: Seconds | None = Field(default=None, gt=0, le=7 * 86400)
    namespaces: list[str] | None = Field(default=None, description="default: every namespace")

    @model_validator(mode="after")
    def _one_form(self) -> MaintenanceWindow:
        weekly = self.days is not None or self.start is not None or self.end is not None
        cronish = self.cron is not None or self.duration is not None
        if weekly == cronish:
            raise ValueError(
                "a window is either days + start + end, or cron + duration (e.g. cron: "
                "'0 2 * * sat', duration: 4h)"
            )
        if weekly:
            if not self.days or self.start is None or self.end is None:
                raise ValueError("a weekly window needs days, start and end")
            for day in self.days:
                if day not in WEEKDAYS:
                    raise ValueError(f"unknown day {day!r}: use {', '.join(WEEKDAYS)}")
            parse_hhmm(self.start)
            parse_hhmm(self.end)
            if self.start == self.end:
                raise ValueError("start and end are equal: the window would be empty")
        else:
            if self.cron is None or self.duration is None:
                raise ValueError("a cron window needs both cron and duration")
            parse_cron(self.cron)
        return self

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron '{self.cron}' for {self.duration or 0:g}s, UTC"
        return f"{','.join(self.days or [])} {self.start}-{self.end} UTC"


class ApprovalRule(Strict):
    """Plans matching every given condition need `approvals` distinct people from `approvers`."""

    name: str = Field(min_length=1)
    risk_at_least: RiskLevel | None = None
    risks: list[RiskLevel] | None = None
    actions: list[str] | None = None
    namespaces: list[str] | None = None
    approvals: int = Field(default=1, ge=1, le=10)
    approvers: list[str] = Field(min_length=1, description="identities, or group:<name>")
    timeout: Seconds | None = Field(default=None, gt=0)
    on_timeout: TimeoutAction | None = None

    @model_validator(mode="after")
    def _known_actions(self) -> ApprovalRule:
        for action in self.actions or []:
            if action not in ACTION_KINDS:
                raise ValueError(
                    f"unknown action '{action}'; known actions: {', '.join(sorted(ACTION_KINDS))}"
                )
        if self.risk_at_least is not None and self.risks is not None:
            raise ValueError("give risk_at_least or risks, not both")
        return self


class Approvals(Strict):
    timeout: Seconds = Field(default=900.0, gt=0)
    on_timeout: TimeoutAction = TimeoutAction.REJECT
    rules: list[ApprovalRule] = Field(default_factory=list)
    default_approvers: list[str] = Field(
        default_factory=list, description="who approves when only a maintenance window asks"
    )
    identities: dict[str, Identity] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    front_doors: list[FrontDoor] = Field(
        default_factory=list,
        description="services that authenticate people and sign their decisions (MCP, Slack)",
    )

    def expand(self, names: list[str]) -> set[str]:
        out: set[str] = set()
        for name in names:
            if name.startswith("group:"):
                out.update(self.groups.get(name.removeprefix("group:"), []))
            else:
                out.add(name)
        return out


class Policy(Strict):
    description: str = ""
    kill_switch: bool = False
    protected_namespaces: list[str] = Field(
        default_factory=list, description="added to the built-in three; glob patterns allowed"
    )
    unprotect: list[Unprotect] = Field(default_factory=list)
    allow: list[Rule] = Field(default_factory=list)
    deny: list[Rule] = Field(default_factory=list)
    bounds: Bounds = Field(default_factory=Bounds)
    budgets: Budgets = Field(default_factory=Budgets)
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    approvals: Approvals = Field(default_factory=Approvals)

    @property
    def protected(self) -> frozenset[str]:
        removed = {u.namespace for u in self.unprotect}
        return frozenset(set(DEFAULT_PROTECTED) - removed) | frozenset(self.protected_namespaces)

    def is_protected(self, namespace: str | None) -> bool:
        """Protected namespaces may be glob patterns (e.g. 'kube-*', 'openshift-*')."""
        if namespace is None:
            return False
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.protected)

    def version(self) -> str:
        """A content hash: the same rules give the same version whatever the YAML layout."""
        raw = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def conflicts(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Rules that contradict each other, by location; a policy with any is refused."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        names: dict[str, tuple[str | int, ...]] = {}
        for group in ("allow", "deny"):
            for i, rule in enumerate(getattr(self, group)):
                where = (group, i, "name")
                if rule.name in names:
                    out.append((where, f"rule name '{rule.name}' is used twice"))
                names.setdefault(rule.name, where)
        for i, rule in enumerate(self.allow):
            for ns in rule.namespaces:
                if self.is_protected(ns):
                    out.append(
                        (
                            ("allow", i, "namespaces"),
                            f"rule '{rule.name}' allows protected namespace '{ns}': remove it, "
                            "or unprotect it explicitly with a reason",
                        )
                    )
            for j, other in enumerate(self.deny):
                if rule.scope() == other.scope():
                    out.append(
                        (
                            ("deny", j),
                            f"deny rule '{other.name}' has exactly the scope of allow rule "
                            f"'{rule.name}': the two contradict each other, keep one",
                        )
                    )
        for i, item in enumerate(self.unprotect):
            if item.namespace in self.protected_namespaces:
                out.append(
                    (
                        ("unprotect", i, "namespace"),
                        f"'{item.namespace}' is both protected and unprotected: keep one",
                    )
                )
            elif item.namespace not in DEFAULT_PROTECTED:
                out.append(
                    (
                        ("unprotect", i, "namespace"),
                        f"'{item.namespace}' is not protected by default; nothing to unprotect",
                    )
                )
        out.extend(self._approval_conflicts())
        return out

    def _approval_conflicts(self) -> list[tuple[tuple[str | int, ...], str]]:
        out: list[tuple[tuple[str | int, ...], str]] = []
        appr = self.approvals
        for name, members in appr.groups.items():
            for member in members:
                if member not in appr.identities:
                    out.append(
                        (
                            ("approvals", "groups", name),
                            f"group '{name}' lists '{member}', who is not under identities",
                        )
                    )
        out.extend(self._door_conflicts())
        owner: dict[tuple[str, str], str] = {}
        for ident, who in appr.identities.items():
            for name in who.not_keys():
                out.append(
                    (
                        ("approvals", "identities", ident, "cli"),
                        f"cli entry {name[:40]!r} is not a public key: the CLI proves who "
                        "decides with the person's own key, so list the key `aiops key "
                        "generate` printed ('ed25519:...') or its fingerprint ('sha256:...')",
                    )
                )
            for channel in ("slack", "mcp", "cli"):
                for principal in getattr(who, channel):
                    key = (channel, principal)
                    if key in owner and owner[key] != ident:
                        out.append(
                            (
                                ("approvals", "identities", ident, channel),
                                f"{channel} user '{principal}' is mapped to both "
                                f"'{owner[key]}' and '{ident}'",
                            )
                        )
                    owner.setdefault(key, ident)
        seen: set[str] = set()
        for i, rule in enumerate(appr.rules):
            if rule.name in seen:
                out.append(
                    (("approvals", "rules", i, "name"), f"rule name '{rule.name}' is used twice")
                )
            seen.add(rule.name)
            out.extend(self._approver_problems(("approvals", "rules", i), rule.approvers))
            people = appr.expand(rule.approvers) & set(appr.identities)
            if len(people) < rule.approvals:
                out.append(
                    (
                        ("approvals", "rules", i, "approvals"),
                        f"rule '{rule.name}' needs {rule.approvals} approvals but only "
                        f"{len(people)} identities may approve",
                    )
                )
        out.extend(
            self._approver_problems(("approvals", "default_approvers"), appr.default_approvers)
        )
        return out

    def _door_conflicts(self) -> list[tuple[tuple[str | int, ...], str]]:
        """A key vouches for one front door, and a front door's key is never a person's."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        appr = self.approvals
        names: set[str] = set()
        keys: set[str] = set()
        for i, door in enumerate(appr.front_doors):
            if door.name in names:
                out.append(
                    (
                        ("approvals", "front_doors", i, "name"),
                        f"front door name '{door.name}' is used twice",
                    )
                )
            if door.key in keys:
                out.append(
                    (
                        ("approvals", "front_doors", i, "key"),
                        f"front door '{door.name}' reuses another door's key",
                    )
                )
            names.add(door.name)
            keys.add(door.key)
            for ident, who in appr.identities.items():
                if who.knows_key(door.key):
                    out.append(
                        (
                            ("approvals", "identities", ident, "cli"),
                            f"'{ident}' signs with the key of front door '{door.name}': a "
                            "door's key vouches for others and is never a person's own",
                        )
                    )
        return out

    def _approver_problems(
        self, where: tuple[str | int, ...], names: list[str]
    ) -> list[tuple[tuple[str | int, ...], str]]:
        out: list[tuple[tuple[str | int, ...], str]] = []
        appr = self.approvals
        for name in names:
            group = name.removeprefix("group:")
            if name.startswith("group:") and group not in appr.groups:
                out.append((where, f"approver '{name}' names an undefined group"))
            elif not name.startswith("group:") and name not in appr.identities:
                out.append(
                    (where, f"approver '{name}' is not under approvals.identities: add them")
                )
        return out


def deny_all() -> Policy:
    """What an empty policy means: nothing is allowed."""
    return Policy(description="deny everything")
