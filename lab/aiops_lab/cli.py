"""The lab's commands for the `aiops` CLI: `aiops demo`, `aiops lab …` and `aiops eval …`.

Registered through the `aiops.cli` entry-point group (see lab/pyproject.toml), so the product's
CLI lists them when the lab is installed and never imports the lab by name.
"""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path

from aiops.cli import LAB_COMMANDS, UserError, delegate
from aiops.config import Settings
from aiops.logs import configure_logging

# The shop's request-metrics flavours (aiops_lab.sim.flavors; a test keeps them equal), named
# here so that building the parser imports no numpy.
METRICS_FLAVORS = ("istio", "otel", "linkerd")


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.devstack import DevStackError
    from aiops.integrations.temporal import TemporalUnavailableError
    from aiops.worker import StartupError
    from aiops_lab.demo import DemoError, DemoOptions, run_demo

    if "AIOPS_LOG__LEVEL" not in os.environ:  # the narration is the output; logs only on trouble
        configure_logging("warning", settings.log.format)
    opts = DemoOptions(
        scenario=args.scenario,
        interactive=args.interactive,
        keep_running=args.keep_running,
        timeout_s=args.timeout,
        warmup_s=args.warmup,
        policy=args.policy,
        metrics=args.metrics,
    )
    try:
        return run_demo(settings, opts)
    except (DemoError, DevStackError, TemporalUnavailableError, StartupError) as exc:
        raise UserError(str(exc)) from exc


def _cmd_lab(args: argparse.Namespace, settings: Settings) -> int:
    from aiops_lab import commands

    state = settings.state_dir
    try:
        if args.lab_command == "up":
            print(
                commands.up(
                    state, rps=args.rps, scrape_interval=args.scrape_interval, metrics=args.metrics
                )
            )
        elif args.lab_command == "run":
            commands.run(
                state, rps=args.rps, scrape_interval=args.scrape_interval, metrics=args.metrics
            )
        elif args.lab_command == "inject":
            print(commands.inject(state, Path(args.scenario_file)))
        elif args.lab_command == "status":
            print(commands.status(state))
        else:
            print(commands.down(state))
    except commands.LabError as exc:
        raise UserError(str(exc)) from exc
    return 0


def _cmd_lab_eval(args: argparse.Namespace, settings: Settings) -> int:
    from aiops.devstack import DevStackError
    from aiops.worker import StartupError
    from aiops_lab.commands import LabError
    from aiops_lab.eval import lab_eval

    if "AIOPS_LOG__LEVEL" not in os.environ:  # progress goes to stderr; logs only on trouble
        configure_logging("warning", settings.log.format)
    try:
        return lab_eval.run(args, settings)
    except (lab_eval.LabEvalError, LabError, DevStackError, StartupError) as exc:
        raise UserError(str(exc)) from exc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help=LAB_COMMANDS["demo"])
    importlib.import_module("aiops_lab.demo").configure_parser(p)
    p.set_defaults(handler=_cmd_demo)
    p = sub.add_parser("eval", help=LAB_COMMANDS["eval"])
    eval_sub = p.add_subparsers(dest="eval_command", metavar="DATASET", required=True)
    delegate(
        eval_sub,
        "nab",
        "NAB scoring (standard, low FP, low FN) of the shipped detector",
        "aiops_lab.eval.nab",
    )
    delegate(
        eval_sub,
        "smd",
        "SMD/ASD point-wise precision, recall, F1, AUPRC, HitRate",
        "aiops_lab.eval.smd",
    )
    delegate(
        eval_sub,
        "rca",
        "root-cause ranking on RCAEval-layout cases (AC@k, Avg@5)",
        "aiops_lab.eval.rca",
    )
    p = sub.add_parser("lab", help=LAB_COMMANDS["lab"])
    lab_sub = p.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    for name, help_ in (
        ("up", "start Prometheus, the shop and the lab Kubernetes API"),
        ("run", "run the lab in the foreground (what `up` starts)"),
    ):
        q = lab_sub.add_parser(name, help=help_)
        q.add_argument("--rps", type=float, default=50.0, help="shop traffic, requests/s")
        q.add_argument("--scrape-interval", default="1s", help="Prometheus scrape interval")
        q.add_argument(
            "--metrics",
            choices=METRICS_FLAVORS,
            default="istio",
            help="request metrics the shop exports: Istio sidecars, OpenTelemetry "
            "(semantic conventions + servicegraph) or Linkerd proxies",
        )
        q.set_defaults(handler=_cmd_lab)
    q = lab_sub.add_parser("inject", help="play a scenario file (faults and noise)")
    q.add_argument("scenario_file", metavar="SCENARIO_FILE")
    q.set_defaults(handler=_cmd_lab)
    lab_sub.add_parser("status", help="services, faults and the running scenario").set_defaults(
        handler=_cmd_lab
    )
    lab_sub.add_parser("down", help="stop the lab").set_defaults(handler=_cmd_lab)
    q = lab_sub.add_parser(
        "eval",
        help="play every scenario of a folder through the whole live "
        "system and score detection, RCA, remediation and safety",
    )
    importlib.import_module("aiops_lab.eval.lab_eval").configure_parser(q)
    q.set_defaults(handler=_cmd_lab_eval)
    delegate(lab_sub, "scenarios", "validate and list scenario files", "aiops_lab.scenario")
