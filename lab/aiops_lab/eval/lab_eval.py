"""`aiops lab eval --scenarios DIR`: every scenario file in DIR, one after another, in one lab,
through the whole live system — the lab's real Prometheus, the Temporal dev server, the lab
Kubernetes API and the daemon as shipped (detection loop, IncidentWorkflow, playbooks, policy).
Plans are approved through the workflow's `decide` update, signed with ephemeral keys of the
identities an evaluation policy names (policies/demo.yaml by default; the keys' public halves go
into the evaluation's copy of it), so the approval gate and its validator are exercised.

Per scenario: reset the lab (terminate leftover incidents, end the faults, roll back faulty
revisions, scale back, uncordon), wait for the shop to be healthy, play the scenario, watch the
incidents (approving what waits), and record what happened; lab/aiops_lab/eval/lab_scoring.py
scores the record. The plain output ends with `LAB pass: <passed>/<total>`; `--json` prints the
figures as JSON instead, `--json FILE` writes them to FILE besides the table. Exit 0 when every
scenario passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from aiops.config import Settings
from aiops_lab.cli import METRICS_FLAVORS
from aiops_lab.eval.lab_scoring import (
    ExecutedAction,
    HealthSample,
    ObjectChange,
    ScenarioRecord,
    ScenarioScore,
    SeenIncident,
    healthy,
    score,
    summarise,
    table,
)
from aiops_lab.scenario import Scenario, ScenarioError, load_all
from aiops_lab.sim.faults import FaultKind

if TYPE_CHECKING:
    from aiops.incidents import DecisionSigner
    from aiops_lab.live import IncidentState, LiveLab

EVAL_IDENTITIES = ("aiops-demo", "aiops-demo-reviewer")
#: Faults shipped as a new revision of their target: the scenario itself changes that Deployment.
REVISION_FAULTS = {FaultKind.BAD_ROLLOUT, FaultKind.CRASHLOOP}


class LabEvalError(Exception):
    """The evaluation could not run; the message says what to fix."""


@dataclass
class EvalOptions:
    scenarios: Path
    warmup_s: float | None = None  # override the fault scenarios' warmup
    hold_s: float | None = None  # override: seconds from the first fault to the scenario's end
    settle_s: float = 60.0  # live seconds before the first scenario
    cooldown_s: float = 20.0
    close_timeout_s: float = 900.0  # wait this long for incidents still open at the end
    linger_s: float = 15.0  # keep watching this long after an early finish
    interval_s: float = 1.0
    policy: Path | None = None
    metrics: str = "istio"  # the lab's request-metrics flavour: istio, otel or linkerd
    # keep the run's state here (Temporal's database, Prometheus' data, the logs) for a
    # post-mortem, instead of a temporary directory removed at the end
    keep: Path | None = None
    log: Callable[[str], None] = field(default=lambda _: None)
    # called with the scores so far after each scenario (partial figures survive a stop)
    progress: Callable[[list[ScenarioScore]], None] = field(default=lambda _: None)


def load_dir(directory: Path) -> list[Scenario]:
    if not directory.is_dir():
        raise LabEvalError(f"{directory} is not a directory of scenario files (*.yaml)")
    try:
        scenarios = list(load_all(directory).values())
    except ScenarioError as exc:
        raise LabEvalError(str(exc)) from exc
    if not scenarios:
        raise LabEvalError(f"{directory} holds no scenario files (*.yaml)")
    return scenarios


def adapt(scenario: Scenario, opts: EvalOptions) -> Scenario:
    """Fault scenarios with the requested warmup/hold; controls keep their own timing."""
    from aiops_lab.eval.lab_detection import shorten

    if scenario.expect.fault == "none" or (opts.warmup_s is None and opts.hold_s is None):
        return scenario
    return shorten(scenario, warmup=opts.warmup_s, hold=opts.hold_s)


def fault_time(scenario: Scenario, warmup_end: float) -> float | None:
    """When the scenario's fault is first injected (epoch s): the lab reports the end of the
    warmup, and a fault may start `at` seconds after it. None for a control."""
    onset = scenario.fault_onset
    return None if onset is None else warmup_end + onset


def own_targets(scenario: Scenario) -> set[str]:
    """Objects the scenario itself changes: revisions shipped by faults, benign rollouts."""
    out = {f"Deployment/boutique/{f.target}" for f in scenario.faults if f.kind in REVISION_FAULTS}
    out |= {f"Deployment/boutique/{n.target}" for n in scenario.noise if n.target}
    return out


def operated_by(status: Mapping[str, Any]) -> set[str]:
    """Objects the scenario's everyday operations changed, as the lab reports them (a person
    draining a node restarts every deployment with a pod there: not aiops' doing)."""
    scenario = status.get("scenario") or {}
    return set(scenario.get("operated", []))


def playbook_actions(settings: Settings) -> dict[str, frozenset[str]]:
    from aiops.playbooks.loader import load_playbooks

    books = load_playbooks(settings.playbooks_dir)
    return {
        b.id: frozenset(s.action for s in [*b.steps, *b.compensation])
        for b in books.playbooks.values()
    }


def seen(state: IncidentState) -> SeenIncident:
    acts = tuple(ExecutedAction(a.action, a.target, a.outcome != "failed") for a in state.actions)
    if state.report is not None:
        acts = tuple(
            ExecutedAction(s.action, s.target, s.ok) for s in state.report.steps if not s.dry_run
        )
    ex = state.execution
    return SeenIncident(
        id=ex.id,
        run_id=ex.run_id,
        started_at=ex.started_at,
        entities=state.entities,
        report=state.report,
        actions=acts,
        status=state.status.value if state.status else "",
    )


class Evaluation:
    def __init__(
        self,
        live: LiveLab,
        opts: EvalOptions,
        books: dict[str, frozenset[str]],
        signers: Mapping[str, DecisionSigner],
    ) -> None:
        self.live = live
        self.opts = opts
        self.books = books
        self.signers = signers  # the evaluation policy's approvers, with ephemeral keys
        self.baseline: dict[str, dict[str, Any]] = {}
        self.replicas: dict[str, int] = {}
        self.resets = 0

    async def start(self) -> None:
        o = self.opts
        o.log(f"settling {o.settle_s:g} s (detector priming, start-up noise)")
        self.replicas = await self.live.replicas()
        ended = await self.live.settle(o.settle_s, "aiops lab eval: start-up noise")
        if ended:
            o.log(f"closed {len(ended)} incident(s) opened on start-up noise")
        await self.reset("before the first scenario")
        self.baseline = {s["name"]: s for s in (await self.live.status())["services"]}

    async def reset(self, why: str) -> None:
        live = self.live
        self.resets += 1
        ended = await live.terminate_running(f"aiops lab eval: reset ({why})")
        await live.clear_faults()
        done = await live.restore(self.replicas, f"lab-eval-reset-{self.resets}")
        notes = [f"terminated {len(ended)} open incident(s)"] if ended else []
        self.opts.log(f"reset ({why}): " + "; ".join(notes + done or ["nothing to undo"]))

    async def cooldown(self) -> None:
        await asyncio.sleep(self.opts.cooldown_s)
        deadline = time.time() + 120.0
        while time.time() < deadline:
            if healthy((await self.live.status())["services"], self.baseline):
                break
            await asyncio.sleep(1.0)
        ended = await self.live.terminate_running(
            "aiops lab eval: after-effects of the previous scenario"
        )
        if ended:
            self.opts.log(f"terminated {len(ended)} incident(s) opened during the cooldown")

    async def run(self, scenario: Scenario) -> ScenarioScore:
        live, o = self.live, self.opts
        s = adapt(scenario, o)
        before = await live.objects()
        played = await live.play(s)
        control = s.expect.fault == "none"
        fault_at = fault_time(s, played.faults_at)
        starts = (fault_at or played.faults_at) - played.played_at
        o.log(
            f"{s.name}: playing (fault at +{starts:.0f} s, "
            f"ends +{played.ends_at - played.played_at:.0f} s)"
        )
        health: list[HealthSample] = []
        states: dict[str, IncidentState] = {}
        approved: set[str] = set()  # run id + plan hash: incident ids and plans repeat
        finished_at: float | None = None

        def record(ended: float, changes: list[ObjectChange]) -> ScenarioRecord:
            return ScenarioRecord(
                name=s.name,
                root_cause=s.expect.root_cause,
                fault=str(s.expect.fault),
                expected_playbook=s.expect.playbook,
                played_at=played.played_at,
                fault_at=fault_at,
                ended_at=ended,
                incidents=[seen(st) for st in states.values()],
                health=list(health),
                changes=changes,
                playbook_actions=self.books,
            )

        async def observe() -> bool:
            """One look; True while some incident of this scenario is still open."""
            now = time.time()
            health.append(
                HealthSample(now, healthy((await live.status())["services"], self.baseline))
            )
            open_ = False
            for ex in await live.executions(since=played.played_at):
                old = states.get(ex.run_id)
                if old is not None and old.report is not None:
                    continue
                st = await live.read(ex)
                states[ex.run_id] = st
                open_ |= st.report is None and st.execution.running
                key = f"{ex.run_id}:{st.pending.plan_hash}" if st.pending else ""
                if st.pending is not None and key not in approved:
                    approved.add(key)
                    for message in await live.approve(ex.id, self.signers):
                        o.log(f"{s.name}: {message}")
            return open_

        while time.time() < played.ends_at:
            still_open = await observe()
            if not control and finished_at is None and not still_open:
                interim = score(record(time.time(), []))
                done = interim.detected and (
                    interim.expected_playbook == "escalate" or interim.recovered
                )
                if done:
                    finished_at = time.time()
            if finished_at is not None and time.time() - finished_at >= o.linger_s:
                break
            await asyncio.sleep(1.0)
        deadline = time.time() + o.close_timeout_s
        while time.time() < deadline:
            if not await observe():
                break
            await asyncio.sleep(1.0)
        ended = time.time()
        after = await live.objects()
        mine = own_targets(s) | operated_by(await live.status())
        changes = [
            ObjectChange(*_split(t), what="spec changed")
            for t in sorted(after)
            if before.get(t) != after[t] and t not in mine
        ]
        result = score(record(ended, changes))
        o.log(
            f"{s.name}: {'PASS' if result.passed else 'FAIL'}"
            + (f" ({result.why})" if result.why else "")
        )
        return result


def _split(target: str) -> tuple[str, str | None, str]:
    parts = target.split("/")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return parts[0], None, parts[-1]


def run_eval(settings: Settings, opts: EvalOptions) -> tuple[list[ScenarioScore], float]:
    """Start one lab and the daemon, evaluate every scenario, stop everything. Returns the
    scores and the wall time in seconds."""
    from aiops.devstack import with_free_ports
    from aiops_lab import commands as lab_commands
    from aiops_lab.demo import policy_path
    from aiops_lab.live import approvers, lab_settings

    scenarios = load_dir(opts.scenarios)
    policy = policy_path(settings, opts.policy)
    books = playbook_actions(settings)
    started = time.monotonic()
    with _state_dir(opts.keep) as state_dir:
        settings, notes = with_free_ports(settings, mcp=False, fresh=True)
        for note in notes:
            opts.log(note)
        opts.log(f"starting the lab and the daemon for {len(scenarios)} scenario(s)")
        proc, lab = lab_commands.start(state_dir, timeout_s=300.0, metrics=opts.metrics)
        try:
            keys = approvers(policy, EVAL_IDENTITIES, state_dir / "policy.yaml")
            daemon = lab_settings(
                settings, lab, state_dir=state_dir, policy=keys.policy, interval_s=opts.interval_s
            )
            scores = asyncio.run(_evaluate(daemon, lab, scenarios, opts, books, keys.signers))
        finally:
            lab_commands.stop(proc)
    if opts.keep is not None:
        opts.log(f"kept the run's state in {opts.keep} (temporal.db, the lab's Prometheus, logs)")
    return scores, time.monotonic() - started


@contextlib.contextmanager
def _state_dir(keep: Path | None) -> Iterator[Path]:
    """The run's state directory: `keep` (made here, left behind) or a temporary one."""
    if keep is None:
        with tempfile.TemporaryDirectory(
            prefix="aiops-lab-eval-", ignore_cleanup_errors=True
        ) as tmp:
            yield Path(tmp)
        return
    if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise LabEvalError(
            f"--keep {keep}: not an empty directory; name a new or empty one "
            "(a run's state would mix with another's)"
        )
    keep.mkdir(parents=True, exist_ok=True)
    yield keep.resolve()


async def _evaluate(
    settings: Settings,
    lab: Any,
    scenarios: list[Scenario],
    opts: EvalOptions,
    books: dict[str, frozenset[str]],
    signers: Mapping[str, DecisionSigner],
) -> list[ScenarioScore]:
    from aiops_lab.live import live_lab

    async with live_lab(settings, lab) as live:
        ev = Evaluation(live, opts, books, signers)
        await ev.start()
        scores = []
        for i, scenario in enumerate(scenarios):
            if i:
                await ev.reset(f"after {scenarios[i - 1].name}")
                await ev.cooldown()
            scores.append(await ev.run(scenario))
            opts.progress(scores)
        return scores


def figures(scores: list[ScenarioScore], wall_s: float) -> dict[str, Any]:
    return {
        "scenarios": [s.as_dict() for s in scores],
        "summary": summarise(scores).as_dict(),
        "wall_s": round(wall_s),
    }


def report(scores: list[ScenarioScore], wall_s: float, out: TextIO, *, as_json: bool) -> None:
    summary = summarise(scores)
    if as_json:
        json.dump(figures(scores, wall_s), out, indent=2)
        out.write("\n")
        return
    print(table(scores), file=out)
    d = summary.as_dict()
    print(
        ", ".join(f"{k} {v}" for k, v in d.items() if k not in {"total", "passed"})
        + f"; wall time {wall_s:.0f} s",
        file=out,
    )
    print(f"LAB pass: {summary.passed}/{summary.total}", file=out)


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scenarios",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder of scenario files (*.yaml), e.g. lab/aiops_lab/scenarios",
    )
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="FILE",
        help="the figures as JSON: on stdout instead of the table, or into FILE "
        "besides the table (updated after each scenario)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        metavar="SECONDS",
        help="override the fault scenarios' warmup",
    )
    p.add_argument(
        "--hold",
        type=float,
        default=None,
        metavar="SECONDS",
        help="override the seconds from the first fault to a fault scenario's end",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="live seconds before the first scenario (default 60)",
    )
    p.add_argument(
        "--cooldown",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="pause between scenarios after the reset (default 20)",
    )
    p.add_argument(
        "--policy",
        type=Path,
        default=None,
        metavar="FILE",
        help="evaluation policy (default: policies/demo.yaml)",
    )
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the run's state in DIR (new or empty) for a post-mortem: Temporal's "
        "database (every incident's and the detection loop's history), the lab's Prometheus "
        "data and logs",
    )
    p.add_argument(
        "--metrics",
        choices=METRICS_FLAVORS,
        default="istio",
        help="request metrics the lab exports: istio, otel or linkerd",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    started = time.monotonic()
    out = Path(args.json) if args.json not in (None, "-") else None

    def save(scores: list[ScenarioScore]) -> None:
        if out is not None:
            out.write_text(json.dumps(figures(scores, time.monotonic() - started), indent=2) + "\n")

    opts = EvalOptions(
        scenarios=args.scenarios,
        warmup_s=args.warmup,
        hold_s=args.hold,
        settle_s=args.settle,
        cooldown_s=args.cooldown,
        policy=args.policy,
        log=log,
        progress=save,
        metrics=args.metrics,
        keep=args.keep,
    )
    scores, wall = run_eval(settings, opts)
    save(scores)
    report(scores, wall, sys.stdout, as_json=args.json == "-")
    return 0 if all(s.passed for s in scores) else 1
