"""Which parts of the ranking earn their keep: the published baselines, then one change at a time.

    uv run python -m aiops_lab.eval.rca_ablation --data DIR [--data DIR ...]

Each row adds one idea to the row above (the last rows try ideas that did not make the default),
scored on every folder given, with the true injection time unless the row says otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from aiops.rca import RankConfig, ScoringConfig
from aiops_lab.eval.rca import METHODS, evaluate
from aiops_lab.eval.rca_cases import Case, CaseError, load_cases

_BASE = ScoringConfig(
    window_s=math.inf, rel_floor=0.0, sustain=1, peer=False, scale="iqr", level_s=None,
    flat_scale="skip", z_cap=math.inf,
)  # fmt: skip


def variants() -> list[tuple[str, RankConfig, float, bool]]:
    """(name, config, offset of the anomaly time from the injection in seconds, whether the
    cases' service graph is used)."""
    # From here on flat columns are scored (scale floors instead) and |z| is capped, as by default.
    s1 = dataclasses.replace(
        _BASE, window_s=300.0, rel_floor=0.01, flat_scale="std", z_cap=ScoringConfig().z_cap
    )
    s2 = dataclasses.replace(s1, sustain=2)
    s3 = dataclasses.replace(s2, peer=True)
    s4 = dataclasses.replace(s3, scale="min", level_s=120.0)
    assert s4 == ScoringConfig(), "the chain must end at the default scoring"
    default = RankConfig()

    def plain(scoring: ScoringConfig) -> RankConfig:
        return RankConfig(scoring=scoring, symptom_weight=1.0, node_weight=1.0)

    search = dataclasses.replace(default, onset_search_s=180.0)
    lat05 = dataclasses.replace(default, symptom_weight=0.5)
    onset3 = dataclasses.replace(default, onset_bonus=3.0)
    return [
        ("nsigma (mean/std, largest |z|)", METHODS["nsigma"], 0.0, False),
        ("baro (median/IQR, largest |z|)", METHODS["baro"], 0.0, False),
        ("+ 5 min window, scale >= 1% of median", plain(s1), 0.0, False),
        ("+ 2nd largest |z| (sustained)", plain(s2), 0.0, False),
        ("+ peer standing per metric kind", plain(s3), 0.0, False),
        ("+ recent level, noise from diffs", plain(s4), 0.0, False),
        ("+ latency weighs 0.7", dataclasses.replace(default, node_weight=1.0), 0.0, False),
        ("+ node_* metrics weigh 0.7 (= default)", default, 0.0, False),
        ("default, breadth 0.3 (not kept)", dataclasses.replace(default, breadth=0.3), 0.0, False),
        ("default, onset bonus 3 (not kept)", onset3, 0.0, False),
        ("default, latency weighs 0.5 (not kept)", lat05, 0.0, False),
        ("baro, time +60 s", METHODS["baro"], 60.0, False),
        ("default, time +60 s", default, 60.0, False),
        ("default, time +60 s, onset search 180 s", search, 60.0, False),
        ("default, time +120 s", default, 120.0, False),
        ("default, time +120 s, onset search 180 s", search, 120.0, False),
        ("default + service graph (edges.csv)", default, 0.0, True),
        ("default + service graph, time +60 s", default, 60.0, True),
    ]  # fmt: skip


def table(folders: Sequence[tuple[str, list[Case]]]) -> list[str]:
    head = f"{'variant':<44}" + "".join(
        f"| {name[:22]:<22} AC@1 AC@3 Avg@5 " for name, _ in folders
    )
    lines = [head, "-" * len(head)]
    for label, cfg, offset, edges in variants():
        row = f"{label:<44}"
        for _, cases in folders:
            s = evaluate(cases, cfg, offset, use_edges=edges).overall
            row += f"| {'':<22} {s.ac1:.2f} {s.ac3:.2f} {s.avg5:.2f} "
        lines.append(row)
    return lines


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, action="append", required=True, help="case folder")


def run(args: argparse.Namespace) -> int:
    try:
        folders = [(str(d.name), load_cases(d)) for d in args.data]
    except CaseError as exc:
        print(f"error: {exc}")
        return 2
    for line in table(folders):
        print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiops eval rca-ablation", description=__doc__)
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
