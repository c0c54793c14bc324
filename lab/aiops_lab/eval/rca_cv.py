"""Leave one system out: the service graph's constants chosen without the system they are scored on.

    uv run python -m aiops_lab.eval.rca_cv --data DIR [--data DIR ...]

The systems are those of each folder's cases.json (a folder without one is one system). For each
system in turn, every candidate below is scored on the other systems, the best one (AC@1, then
Avg@5, then the shipped default on a tie) is kept, and it is scored on the held-out system. The
cross-validated figure pools the held-out cases; the full figure scores the shipped default on
every case. The candidates span the constants' plausible ranges: how often a faulty side shows on
its edges, how often an edge departs by chance, and which latency quantile the edges carry.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiops.rca import RankConfig
from aiops.rca.edges import EdgeConfig
from aiops_lab.eval.rca import CaseResult, evaluate, summarise
from aiops_lab.eval.rca_cases import Case, CaseError, load_cases, load_systems, read_edges_csv

DEFAULT = ("default (shows 0.8, chance 0.05, p50)", RankConfig(), "p50")


def candidates() -> list[tuple[str, RankConfig, str]]:
    """(name, config, edge latency quantile); the shipped default first."""
    out = [DEFAULT]
    for shows in (0.6, 0.8, 0.95):
        for chance in (0.01, 0.05, 0.2):
            for quantile in ("p50", "p90"):
                name = f"shows {shows:g}, chance {chance:g}, {quantile}"
                cfg = RankConfig(edges=EdgeConfig(side_shows=shows, chance=chance))
                if (cfg, quantile) != (DEFAULT[1], DEFAULT[2]):
                    out.append((name, cfg, quantile))
    return out


@dataclass(frozen=True)
class Fold:
    held_out: str
    chosen: str
    results: list[CaseResult]


def with_quantile(cases: Sequence[Case], quantile: str) -> list[Case]:
    if quantile == "p50":
        return list(cases)
    return [
        dataclasses.replace(c, edges=read_edges_csv(c.path / "edges.csv", quantile))
        if c.edges
        else c
        for c in cases
    ]


def cross_validate(systems: dict[str, list[Case]]) -> list[Fold]:
    options = candidates()
    by_quantile = {
        q: {s: with_quantile(cs, q) for s, cs in systems.items()} for q in {o[2] for o in options}
    }
    scored = {
        (name, system): evaluate(by_quantile[q][system], cfg).results
        for name, cfg, q in options
        for system in systems
    }
    folds = []
    for held_out in sorted(systems):
        train = [s for s in systems if s != held_out]

        def merit(name: str, train: list[str] = train) -> tuple[float, float, bool]:
            s = summarise([r for system in train for r in scored[(name, system)]])
            return (s.ac1, s.avg5, name == DEFAULT[0])

        chosen = max((o[0] for o in options), key=merit)
        folds.append(Fold(held_out, chosen, scored[(chosen, held_out)]))
    return folds


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, action="append", required=True, help="case folder")


def run(args: argparse.Namespace) -> int:
    systems: dict[str, list[Case]] = {}
    try:
        for folder in args.data:
            names = load_systems(folder)
            for case in load_cases(folder):
                systems.setdefault(names.get(case.name, folder.name), []).append(case)
    except CaseError as exc:
        print(f"error: {exc}")
        return 2
    folds = cross_validate(systems)
    print(f"{'held out':<20}{'n':>4}  {'AC@1':>5} {'AC@3':>5} {'Avg@5':>5}   chosen on the others")
    for f in folds:
        s = summarise(f.results)
        print(f"{f.held_out:<20}{s.n:>4}  {s.ac1:>5.2f} {s.ac3:>5.2f} {s.avg5:>5.2f}   {f.chosen}")
    cv = summarise([r for f in folds for r in f.results])
    full = summarise([r for cs in systems.values() for r in evaluate(cs, DEFAULT[1]).results])
    print(f"{'cross-validated':<20}{cv.n:>4}  {cv.ac1:>5.2f} {cv.ac3:>5.2f} {cv.avg5:>5.2f}")
    print(f"{'full (default)':<20}{full.n:>4}  {full.ac1:>5.2f} {full.ac3:>5.2f} {full.avg5:>5.2f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiops_lab.eval.rca_cv", description=__doc__)
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
