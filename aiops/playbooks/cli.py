"""`aiops playbooks validate [DIR]`: check every playbook file, naming file, line and field."""

from __future__ import annotations

import argparse
from pathlib import Path

from aiops.domain.yamlsource import LoadError
from aiops.playbooks.loader import load_playbooks, signal_problems
from aiops.profiles import load_profiles


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.description = "Check every playbook in DIR; print each error as file:line: field: reason."
    p.add_argument(
        "dir", nargs="?", default="playbooks", type=Path, help="directory of *.yaml playbooks"
    )
    p.add_argument(
        "--profiles",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="a folder of your own metric profiles, whose signals conditions may name "
        "(as settings profiles.dirs); repeatable",
    )


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    try:
        playbooks = load_playbooks(directory)
    except LoadError as exc:
        for error in exc.errors:
            print(error)
        files = {e.file for e in exc.errors}
        print(f"{len(exc.errors)} error(s) in {len(files)} file(s); nothing was loaded")
        return 1
    try:
        known = load_profiles(args.profiles).entities()
    except LoadError as exc:
        print(f"the metric profiles are invalid, so signals cannot be checked:\n{exc}")
        return 1
    problems = signal_problems(playbooks, known)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} error(s): conditions on signals no metric profile defines")
        return 1
    for pb in sorted(playbooks.playbooks.values(), key=lambda p: p.id):
        faults = ", ".join(f.value for f in pb.matches.faults)
        actions = ", ".join(s.action for s in pb.steps)
        print(f"{pb.id}: {faults} -> {actions} (risk {pb.risk.value})")
    print(f"ok: {len(playbooks)} playbooks in {directory} (version {playbooks.version()})")
    return 0
