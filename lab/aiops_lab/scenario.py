"""Lab scenarios: a YAML file says what traffic to run, which faults and noise to inject when,
and what the right diagnosis and remedy are (the ground truth the evaluation scores against).

Format (issue 3; extend only with optional fields so scenario files written elsewhere keep
working):

    name: cart-memory-leak
    seed: 42
    warmup: 90s                 # normal traffic before the first fault
    duration: 300s              # whole run, recovery included
    traffic: {rps: 50, pattern: steady}
    faults:
      - {at: 0s, kind: memory_leak, target: cartservice, severity: medium}
    noise:
      - {at: 20s, kind: benign_rollout, target: adservice}
    expect:
      root_cause: cartservice   # a deployment, a node name for node_pressure, or none
      fault: memory_leak
      playbook: restart-deployment   # a playbook id, escalate, or none

`at` of faults and noise counts from the end of the warmup. Optional extensions: `description`;
per fault `duration` (default: until remediated) and the kind's own magnitude parameter (see
`PARAMS`); per noise `duration`, `magnitude` and `every`; random traffic bursts on top of any
pattern:

    traffic: {rps: 30, pattern: steady, bursts: {multiplier: [2, 3], seconds: [10, 60],
              every: 180s, chance: 0.5, after: 90s}}

Everyday operations as noise (aiops_lab.sim.operators), each acting through the lab's
Kubernetes API the way a person or a controller does:

    - {at: 5m, kind: node_drain, target: node-b, duration: 10m}    # cordon, move pods, uncordon
    - {at: 0s, kind: autoscale, target: frontend, magnitude: 0.5}  # an HPA at 50 % CPU
    - {at: 2m, kind: cronjob, target: shippingservice, every: 10m, duration: 60s, magnitude: 2.5}
    - {at: 0s, kind: scale, target: frontend, magnitude: 5}        # kubectl scale --replicas=5
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from aiops_lab.sim.faults import (
    EXPECTED_PLAYBOOK,
    SEVERITY_DEFAULTS,
    Fault,
    FaultKind,
    NoiseKind,
    Severity,
)
from aiops_lab.sim.topology import NODES, SERVICES
from aiops_lab.sim.traffic import Bursts, Pattern

SCENARIO_DIR = Path(__file__).parent / "scenarios"
#: Half-hour runs of what a real cluster has every day (bursts, releases, a drain, an
#: autoscaler, a CronJob) and a fault after them: `aiops lab eval --scenarios` this folder.
EVERYDAY_DIR = SCENARIO_DIR / "everyday"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """'90s', '5m', '1h', '250ms' or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 5m, 1h or 250ms")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]

# Each fault kind's own parameters besides at/kind/target/severity/duration.
PARAMS: dict[FaultKind, dict[str, str]] = {
    kind: {key: "number"} for kind, (key, _) in SEVERITY_DEFAULTS.items()
}
PARAMS[FaultKind.CRASHLOOP]["reason"] = "text"
PARAMS[FaultKind.DEPENDENCY_DOWN] = {}

_COMMON_FAULT_FIELDS = ("at", "kind", "target", "severity", "duration")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BurstSpec(_Strict):
    multiplier: tuple[float, float] = (1.3, 1.6)
    seconds: tuple[Duration, Duration] = (10.0, 30.0)
    every: Duration = 120.0
    chance: float = Field(default=0.5, ge=0, le=1)
    after: Duration = 0.0  # seconds after the scenario starts (not after its warmup)

    @model_validator(mode="after")
    def _check(self) -> BurstSpec:
        for name, (lo, hi) in (("multiplier", self.multiplier), ("seconds", self.seconds)):
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be [low, high] with 0 < low <= high")
        if self.seconds[1] > self.every:
            raise ValueError(
                f"bursts of up to {self.seconds[1]:g} s do not fit in windows of every "
                f"{self.every:g} s; make every at least the longest burst"
            )
        return self

    def to_bursts(self) -> Bursts:
        return Bursts(self.multiplier, self.seconds, self.every, self.chance)


class TrafficSpec(_Strict):
    rps: float = Field(gt=0, le=5000)
    pattern: Pattern = Pattern.STEADY
    bursts: BurstSpec | None = None


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    at: Duration = 0.0
    kind: FaultKind
    target: str | None = None
    severity: Severity = Severity.MEDIUM
    duration: Duration | None = None

    @model_validator(mode="after")
    def _check(self) -> FaultSpec:
        allowed = PARAMS[self.kind]
        for key, value in (self.model_extra or {}).items():
            if key not in allowed:
                names = ", ".join([*_COMMON_FAULT_FIELDS, *allowed])
                raise ValueError(
                    f"unknown field {key!r} for kind {self.kind.value}; allowed: {names}"
                )
            if allowed[key] == "number" and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise ValueError(f"{key} must be a non-negative number, got {value!r}")
        if self.target is None:
            if self.kind is not FaultKind.DEPENDENCY_DOWN:
                raise ValueError(f"kind {self.kind.value} needs a target")
            object.__setattr__(self, "target", "redis-cart")
        return self

    @field_validator("target")
    @classmethod
    def _target(cls, target: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if target is None or kind is None:
            return target
        if kind is FaultKind.NODE_PRESSURE:
            if target not in NODES:
                raise ValueError(f"{target!r} is not a node; allowed: {', '.join(NODES)}")
        elif target not in SERVICES:
            raise ValueError(
                f"{target!r} is not a deployment of the shop; allowed: {', '.join(SERVICES)}"
            )
        return target

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def to_fault(self) -> Fault:
        assert self.target is not None  # set by the validator
        return Fault(self.kind, self.target, self.severity, self.params, self.duration)


#: Noise kinds that act on a deployment or a node (the rest act on the traffic).
_ON_DEPLOYMENT = {
    NoiseKind.BENIGN_ROLLOUT,
    NoiseKind.AUTOSCALE,
    NoiseKind.CRONJOB,
    NoiseKind.SCALE,
}


class NoiseSpec(_Strict):
    at: Duration = 0.0
    kind: NoiseKind
    target: str | None = None
    duration: Duration | None = None
    magnitude: float | None = Field(default=None, gt=0)
    every: Duration | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> NoiseSpec:
        if self.kind in _ON_DEPLOYMENT and self.target not in SERVICES:
            raise ValueError(
                f"{self.kind.value} needs a target deployment; got {self.target!r}; "
                f"allowed: {', '.join(SERVICES)}"
            )
        if self.kind is NoiseKind.NODE_DRAIN and self.target not in NODES:
            raise ValueError(
                f"node_drain needs a target node; got {self.target!r}; allowed: {', '.join(NODES)}"
            )
        if self.kind is NoiseKind.AUTOSCALE and (self.magnitude or 0.5) > 1:
            raise ValueError("autoscale's magnitude is the target CPU utilisation, in (0, 1]")
        if self.kind is NoiseKind.SCALE and (
            self.magnitude is None or self.magnitude != round(self.magnitude)
        ):
            raise ValueError("scale needs a whole number of replicas as its magnitude")
        if self.every is not None and self.kind is not NoiseKind.CRONJOB:
            raise ValueError(f"every is a cronjob's schedule; {self.kind.value} has none")
        if self.kind is NoiseKind.CRONJOB and (self.duration or 60.0) > (self.every or 600.0):
            raise ValueError("a cronjob's duration must not be longer than its schedule (every)")
        return self


class ExpectSpec(_Strict):
    root_cause: str
    fault: FaultKind | Literal["none"]
    playbook: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")

    @model_validator(mode="after")
    def _check(self) -> ExpectSpec:
        allowed = [*SERVICES, *NODES, "none"]
        if self.root_cause not in allowed:
            raise ValueError(
                f"root_cause {self.root_cause!r} is not a deployment, a node or "
                f"none; allowed: {', '.join(allowed)}"
            )
        return self


class Scenario(_Strict):
    name: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    description: str | None = None
    seed: int = 0
    warmup: Duration = 0.0
    duration: Duration
    traffic: TrafficSpec
    faults: list[FaultSpec] = Field(default_factory=list)
    noise: list[NoiseSpec] = Field(default_factory=list)
    expect: ExpectSpec

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        last = max([f.at for f in self.faults] + [n.at for n in self.noise], default=0.0)
        if self.duration <= self.warmup + last:
            raise ValueError(
                f"duration ({self.duration:g}s) must be longer than warmup "
                f"({self.warmup:g}s) plus the last fault or noise ({last:g}s)"
            )
        kinds = {f.kind.value for f in self.faults}
        if self.expect.fault == "none" and kinds:
            raise ValueError(f"expect.fault is none but the scenario injects {sorted(kinds)}")
        if self.expect.fault != "none" and self.expect.fault not in kinds:
            raise ValueError(
                f"expect.fault {self.expect.fault} is not among the injected "
                f"faults {sorted(kinds) or '(none)'}"
            )
        return self

    @property
    def fault_onset(self) -> float | None:
        """Seconds after the warmup at which the expected fault is first injected (None for a
        control): what time to detect counts from, not the end of the warmup."""
        if self.expect.fault == "none":
            return None
        return min(f.at for f in self.faults if f.kind == self.expect.fault)

    def expected_playbook_for_fault(self) -> str:
        if self.expect.fault == "none":
            return "none"
        return EXPECTED_PLAYBOOK[FaultKind(self.expect.fault)]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names file, line, field and fix."""


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {k.value for k in FaultKind} | {"function-after"}:
            continue  # pydantic's union/validator tags, not a field the user wrote
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ScenarioError(
            f"{source}{where}: not valid YAML: {getattr(e, 'problem', None) or e}"
        ) from e
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: a scenario is a mapping with name, duration, traffic, "
            f"expect, ... (got {type(data).__name__})"
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = tuple(err["loc"])
            line = _line_of(root, loc)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; see lab/aiops_lab/scenario.py)"
            lines.append(f"{source}{f':{line}' if line else ''}: {_field(loc)}: {msg}")
        raise ScenarioError("\n".join(lines)) from e


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"{p}: cannot read scenario: {e.strerror}") from e
    return parse_scenario(text, str(p))


def load_all(directory: str | Path = SCENARIO_DIR) -> dict[str, Scenario]:
    """Every *.yaml scenario in `directory`, by name; names must be unique."""
    out: dict[str, Scenario] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        s = load_scenario(path)
        if s.name in out:
            raise ScenarioError(f"{path}: name {s.name!r} is used by another scenario")
        out[s.name] = s
    return out


def configure_parser(p: argparse.ArgumentParser) -> None:
    """`aiops lab scenarios [FILE...]`: validate scenario files and list them."""
    p.add_argument(
        "files",
        nargs="*",
        type=Path,
        help=f"scenario files (default: every *.yaml in {SCENARIO_DIR})",
    )


def run(args: argparse.Namespace) -> int:
    files: list[Path] = list(args.files) or sorted(SCENARIO_DIR.glob("*.yaml"))
    failed = 0
    for path in files:
        try:
            s = load_scenario(path)
        except ScenarioError as e:
            print(e)
            failed += 1
            continue
        faults = ", ".join(f"{f.kind.value}@{f.target}+{f.at:g}s" for f in s.faults) or "-"
        print(
            f"{s.name:28} {s.traffic.rps:g} rps {s.traffic.pattern.value:8} "
            f"faults: {faults:45} expect: {s.expect.root_cause}/{s.expect.fault}"
            f" -> {s.expect.playbook}"
        )
    if failed:
        print(f"{failed} of {len(files)} scenario files are invalid")
    return 1 if failed else 0
