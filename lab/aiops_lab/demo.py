"""`aiops demo`: one command that shows the whole product on the lab.

It starts the lab (simulated Online Boutique on a simulated cluster, the lab Kubernetes API, a real
Prometheus with two days of history) and the daemon as shipped (Temporal dev server and UI, the
worker, the detection loop every second), injects a fault scenario (a bad cartservice rollout by
default) and narrates what the daemon does: detection, root cause, plan, policy and approval,
remediation, verification. Approval goes through the workflow's real `decide` update as the
identity `aiops-demo`, which the demo policy (policies/demo.yaml) names as an approver, signed
with an ephemeral key whose public half the demo puts into its copy of that policy; with
`--interactive` the demo waits for a person instead (`aiops approve` with their own key, which
the demo maps to the policy's `operator`; MCP or Slack).

Output is plain lines with the seconds since start, so it reads the same in a terminal and in CI
logs. Exit 0 when the incident was remediated, verified and the shop recovered; 1 with the reason
otherwise. Everything started is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aiops.config import Settings
from aiops.domain import IncidentStatus
from aiops_lab import commands as lab_commands
from aiops_lab.cli import METRICS_FLAVORS
from aiops_lab.eval.lab_detection import shorten
from aiops_lab.eval.lab_scoring import HealthSample, healthy, names_entity, recovered_at

if TYPE_CHECKING:
    from aiops.incidents import DecisionSigner
    from aiops_lab.live import Execution, IncidentState, LiveLab
    from aiops_lab.runner import LabInfo
from aiops_lab.scenario import SCENARIO_DIR, Scenario, ScenarioError, load_scenario

DEFAULT_SCENARIO = SCENARIO_DIR / "cart-bad-rollout.yaml"
FLAVOR_WORDS = {
    "istio": "Istio's sidecars write them",
    "otel": "OpenTelemetry writes them (semantic conventions + servicegraph)",
    "linkerd": "Linkerd's proxies write them",
}
DEMO_IDENTITIES = ("aiops-demo", "aiops-demo-reviewer")
TERMINAL = {
    IncidentStatus.RESOLVED,
    IncidentStatus.REJECTED,
    IncidentStatus.ESCALATED,
    IncidentStatus.FAILED,
    IncidentStatus.ROLLED_BACK,
}


_Say = Callable[[str], None]


class DemoError(Exception):
    """The demo could not run or the incident did not recover; the message says why."""


@dataclass
class Narrator:
    out: TextIO = sys.stdout
    t0: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.t0
        for i, line in enumerate(text.splitlines() or [""]):
            prefix = f"[{elapsed:6.1f}s] " if i == 0 else " " * 10
            print(prefix + line, file=self.out, flush=True)


@dataclass
class DemoOptions:
    scenario: Path = DEFAULT_SCENARIO
    interactive: bool = False
    keep_running: bool = False
    timeout_s: float = 900.0
    warmup_s: float = 20.0
    settle_s: float = 20.0
    interval_s: float = 1.0
    policy: Path | None = None
    metrics: str = "istio"  # the lab's request-metrics flavour: istio, otel or linkerd


@dataclass
class Watch:
    """What has been told about one incident run, so each stage is narrated once."""

    ex: Execution
    told: set[str] = field(default_factory=set)
    audit_seen: int = 0
    state: IncidentState | None = None


def policy_path(settings: Settings, given: Path | None) -> Path:
    path = given or (
        settings.policies_dir / "demo.yaml"
        if settings.policies_dir.is_dir()
        else Path("policies/demo.yaml")
    )
    if not path.exists():
        raise DemoError(
            f"the demo policy {path} is missing; pass --policy FILE (see "
            "policies/demo.yaml in the repository)"
        )
    return path


def run_demo(settings: Settings, opts: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Run the demo; returns the exit code. Raises DemoError for what a person can fix."""
    from aiops.devstack import with_free_ports

    try:
        scenario = load_scenario(opts.scenario)
    except ScenarioError as exc:
        raise DemoError(str(exc)) from exc
    if scenario.expect.fault == "none":
        raise DemoError(
            f"{opts.scenario} is a control without faults; the demo needs a fault "
            "scenario (e.g. lab/aiops_lab/scenarios/cart-bad-rollout.yaml)"
        )
    from aiops_lab.live import approvers, lab_settings

    say = Narrator(out).say
    state_dir = (settings.state_dir / "demo").resolve()
    shutil.rmtree(state_dir, ignore_errors=True)  # a fresh cluster, history and Temporal
    state_dir.mkdir(parents=True)
    own = _own_key(settings) if opts.interactive else None
    keys = approvers(
        policy_path(settings, opts.policy),
        [] if opts.interactive else DEMO_IDENTITIES,
        state_dir / "policy.yaml",
        extra={"operator": own} if own else None,
    )
    if opts.interactive and own is None:
        say(
            f"no key of yours at {settings.signing.cli_key}: run `aiops key generate` first to "
            "approve with `aiops approve` (MCP and Slack work as the policy maps them)"
        )
    settings, notes = with_free_ports(settings, mcp=False)
    for note in notes:
        say(note)
    say(
        f"starting the lab: a simulated Online Boutique on a simulated cluster, the lab "
        f"Kubernetes API and Prometheus with two days of history, request metrics as "
        f"{FLAVOR_WORDS.get(opts.metrics, opts.metrics)} (state in {state_dir})"
    )
    try:
        proc, lab = lab_commands.start(state_dir, timeout_s=300.0, metrics=opts.metrics)
    except lab_commands.LabError as exc:
        raise DemoError(str(exc)) from exc
    try:
        say(f"the lab is up: Prometheus {lab.prometheus_url}, Kubernetes API {lab.kube_api_url}")
        daemon_settings = lab_settings(
            settings, lab, state_dir=state_dir, policy=keys.policy, interval_s=opts.interval_s
        )
        return asyncio.run(_demo(daemon_settings, lab, scenario, opts, say, keys.signers))
    finally:
        lab_commands.stop(proc)
        say("stopped the daemon and the lab")


def _own_key(settings: Settings) -> str | None:
    """The public half of the person's own key, if they have one."""
    from aiops.incidents.signing import KeyFileError, load_key_file, public_key

    try:
        return public_key(load_key_file(settings.signing.cli_key, personal=True))
    except KeyFileError:
        return None


async def _demo(
    settings: Settings,
    lab: LabInfo,
    scenario: Scenario,
    opts: DemoOptions,
    say: _Say,
    signers: Mapping[str, DecisionSigner],
) -> int:
    from aiops_lab.live import live_lab

    say(
        "starting the daemon: Temporal dev server, worker, detection loop every "
        f"{opts.interval_s:g} s (policy {settings.policies_dir})"
    )
    async with live_lab(settings, lab) as live:
        ui = live.daemon.settings.temporal.ui_url
        say(f"the daemon is up; Temporal UI: {ui}")
        await _settle(live, opts.settle_s, say)
        baseline = {s["name"]: s for s in (await live.status())["services"]}
        played = await live.play(shorten(scenario, warmup=opts.warmup_s))
        faults = ", ".join(f"{f.kind.value} on {f.target}" for f in scenario.faults)
        say(
            f"injected scenario {scenario.name}: {faults} in {opts.warmup_s:g} s "
            f"({scenario.description or 'no description'})"
        )
        failure: DemoError | None = None
        code = 1
        try:
            code = await _watch(live, scenario, played.faults_at, baseline, opts, say, signers)
        except DemoError as exc:
            if not opts.keep_running:
                raise
            failure = exc
            say(f"the demo failed: {exc}")
        if opts.keep_running:  # also after a failure: the UI shows what happened
            say(f"the stack stays up for exploring: Temporal UI {ui}; press Ctrl-C to stop")
            await _until_interrupted()
        if failure is not None:
            raise failure
        return code


async def _settle(live: LiveLab, seconds: float, say: _Say) -> None:
    """Let the detector take its first passes; incidents opened on start-up noise (the jump from
    backfilled history to live samples) are closed so the fault opens a fresh incident."""
    say(f"letting the detector take its first passes (at least {seconds:g} s)")
    ended = await live.settle(seconds, "aiops demo: start-up noise before the scenario")
    if ended:
        say(f"closed {len(ended)} incident(s) opened on start-up noise before the fault")


async def _watch(
    live: LiveLab,
    scenario: Scenario,
    fault_at: float,
    baseline: dict[str, dict[str, object]],
    opts: DemoOptions,
    say: _Say,
    signers: Mapping[str, DecisionSigner],
) -> int:
    root = scenario.expect.root_cause
    watches: dict[str, Watch] = {}
    deadline = time.time() + opts.timeout_s
    approved: set[str] = set()  # run id + plan hash: incident ids and plans repeat
    resolved: IncidentState | None = None
    health: list[HealthSample] = []
    while time.time() < deadline:
        services = (await live.status())["services"]
        health.append(HealthSample(time.time(), healthy(services, baseline)))
        for ex in await live.executions(since=fault_at - 1):
            w = watches.setdefault(ex.run_id, Watch(ex))
            state = await live.read(ex)
            w.state = state
            _narrate(live, w, state, say)
            pending = state.pending
            key = f"{ex.run_id}:{pending.plan_hash}" if pending else ""
            if pending is not None and key not in approved:
                if opts.interactive:
                    if "asked" not in w.told:
                        w.told.add("asked")
                        _ask_person(live, state, say)
                else:
                    for message in await live.approve(ex.id, signers):
                        say(
                            f"approval: {message} (signed with the demo's approver key, "
                            "through the workflow's decide update)"
                        )
                    approved.add(key)
            if state.report is not None and "closed" not in w.told:
                w.told.add("closed")
                if state.status is IncidentStatus.RESOLVED:
                    resolved = state
                elif any(names_entity(e, root) for e in state.entities):
                    reason = state.plan.rationale if state.plan else ""
                    say(f"incident {ex.id} closed as {state.status}: {reason}")
                    raise DemoError(
                        f"the incident about {root} closed as {state.status} instead of being "
                        f"remediated; see {live.daemon.incident_url(ex.id)}"
                    )
        if resolved is not None:
            return await _confirm_recovery(
                live, resolved, fault_at, baseline, health, deadline, say
            )
        await asyncio.sleep(1.0)
    raise DemoError(
        f"no incident was remediated and verified within {opts.timeout_s:.0f} s of "
        f"the injection; see the Temporal UI {live.daemon.settings.temporal.ui_url}"
    )


def _narrate(live: LiveLab, w: Watch, state: IncidentState, say: _Say) -> None:
    ex = state.execution
    if "opened" not in w.told:
        w.told.add("opened")
        entities = ", ".join(state.entities[:6]) or "-"
        say(
            f"detected: incident {ex.id} opened on anomalies of {entities}\n"
            f"Temporal UI: {live.daemon.incident_url(ex.id)}"
        )
    # Keyed by report and plan, not once: an incident on young evidence investigates and plans
    # again (IncidentWorkflow's settle look), and the second answer is the one it acts on.
    if state.rca is not None and f"rca:{state.rca.finished_at}" not in w.told:
        w.told.add(f"rca:{state.rca.finished_at}")
        top = state.rca.top
        if top is None:
            say("root cause: no hypothesis")
        else:
            lines = [
                f"root cause: {top.target} ({top.target_kind}), fault {top.fault.value}, "
                f"confidence {top.confidence:.0%}"
            ]
            lines += [f"  evidence: {e.summary}" for e in top.evidence[:3]]
            nxt = state.rca.hypotheses[1:3]
            if nxt:
                lines.append(
                    "  next: " + ", ".join(f"{h.target} ({h.confidence:.0%})" for h in nxt)
                )
            say("\n".join(lines))
    if state.plan is not None and f"plan:{state.plan.plan_hash()}" not in w.told:
        w.told.add(f"plan:{state.plan.plan_hash()}")
        plan = state.plan
        steps = "; ".join(f"{s.action} on {s.target}" for s in plan.steps) or "no steps"
        say(
            f"plan: playbook {plan.playbook_id} (risk {plan.risk.value}): {steps}\n"
            f"  why: {plan.rationale}"
        )
    if state.status is not None and f"status:{state.status}" not in w.told:
        w.told.add(f"status:{state.status}")
        say(f"incident {ex.id} is {state.status.value}")
    for entry in state.audit[w.audit_seen :]:
        if (
            entry.what.startswith(
                (
                    "policy",
                    "plan ",
                    "approval",
                    "step",
                    "compensation",
                    "verification",
                    "dry-run",
                    "preconditions",
                )
            )
            or entry.actor == "policy"
        ):
            say(f"{entry.actor}: {entry.what}")
    w.audit_seen = len(state.audit)


def _ask_person(live: LiveLab, state: IncidentState, say: _Say) -> None:
    pending = state.pending
    assert pending is not None
    t = live.daemon.settings.temporal
    say(
        f"waiting for a person to approve plan {pending.plan_hash} (approvers: "
        f"{', '.join(pending.decision.approvers)}). From another terminal, with your own key "
        f"(the demo maps it to `operator`):\n"
        f"  AIOPS_TEMPORAL__ADDRESS={t.address} "
        f"python3 -m uv run aiops approve {state.execution.id}\n"
        f"or over MCP / Slack as an approver the policy names; the diff it would apply:\n"
        + "\n".join(f"  {d}" for d in pending.dry_run)
    )


async def _confirm_recovery(
    live: LiveLab,
    state: IncidentState,
    fault_at: float,
    baseline: dict[str, dict[str, object]],
    health: list[HealthSample],
    deadline: float,
    say: _Say,
) -> int:
    """The incident says it is resolved; the shop must agree (healthy for 10 s after the fix)."""
    report = state.report
    assert report is not None
    fixed_at = next(
        (e.at.timestamp() for e in report.audit if e.what.startswith("step ")),
        state.execution.started_at,
    )
    back = recovered_at(health, fixed_at, 10.0)
    while back is None and time.time() < deadline:
        services = (await live.status())["services"]
        health.append(HealthSample(time.time(), healthy(services, baseline)))
        back = recovered_at(health, fixed_at, 10.0)
        await asyncio.sleep(1.0)
    if back is None:
        raise DemoError(
            "the incident was resolved but the shop did not look healthy again "
            "before the time limit"
        )
    closed = report.closed_at.timestamp() if report.closed_at else time.time()
    steps = "; ".join(
        f"{s.action} on {s.target}: {s.message.splitlines()[0]}" for s in report.steps
    )
    approvers = ", ".join(f"{d.identity} via {d.channel}" for d in report.decisions) or "none"
    top = report.rca.top if report.rca else None
    cause = f"{top.target} ({top.fault.value}, confidence {top.confidence:.0%})" if top else "-"
    say(
        "summary:\n"
        f"  incident       {report.incident_id} ({live.daemon.incident_url(report.incident_id)})\n"
        f"  detected       {state.execution.started_at - fault_at:.1f} s after the fault\n"
        f"  root cause     {cause}\n"
        f"  playbook       {report.plan.playbook_id if report.plan else '-'}\n"
        f"  approved by    {approvers}\n"
        f"  remediation    {steps or '-'}, {fixed_at - fault_at:.1f} s after the fault\n"
        f"  shop healthy   {back - fault_at:.1f} s after the fault\n"
        f"  verified       {report.verified} (closed {closed - fault_at:.1f} s after the fault, "
        "after the playbook's verification window)"
    )
    return 0


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scenario",
        type=Path,
        default=DEFAULT_SCENARIO,
        metavar="FILE",
        help="fault scenario to play (default: a bad cartservice rollout)",
    )
    p.add_argument(
        "--interactive",
        action="store_true",
        help="wait for a person to approve (aiops approve, MCP or Slack)",
    )
    p.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the stack up after the summary, until Ctrl-C",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="give up when no incident recovered this long after the injection",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="healthy traffic between the injection and the fault",
    )
    p.add_argument(
        "--policy",
        type=Path,
        default=None,
        metavar="FILE",
        help="policy file (default: policies/demo.yaml)",
    )
    p.add_argument(
        "--metrics",
        choices=METRICS_FLAVORS,
        default="istio",
        help="request metrics the lab exports (Istio, OpenTelemetry or Linkerd names); aiops "
        "finds which through its metric profiles",
    )
