"""`aiops eval rca --data DIR [--json]`: service-level AC@1, AC@3, Avg@5 over RCAEval-layout cases.

AC@k is the share of cases whose root-cause service is among the top k; Avg@5 is the mean of AC@1
to AC@5 (RCAEval ASE'24 §3.2, BARO FSE'24 Eq. 6). Next to every figure is what a uniformly random
ranking of the same services would score, and the accuracy of the fault type the planner would get.
Cases with a service graph (`edges.csv`) are scored with and without it in the same run. A case
that cannot be ranked (too little data before the injection, an unreadable file) is a miss, and
its reason is printed; only an unusable folder stops the evaluation.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aiops.rca import RankConfig, RcaInputError, ScoringConfig, rank
from aiops.rca.report import describe_edge
from aiops_lab.eval import rca_report as report
from aiops_lab.eval.rca_cases import (
    FAULT_TYPES,
    BrokenCase,
    Case,
    CaseError,
    load_systems,
    read_call_graph,
    scan_cases,
)

# Published methods re-expressed with our scorer, so their figures can be compared on the same
# cases. "baro": BARO's robust scoring with the true anomaly time (median/IQR of everything before,
# largest |z| after; columns with a flat normal period are skipped: this is the README's ten-line
# floor); "nsigma": the same with mean/std.
METHODS: dict[str, RankConfig] = {
    "aiops": RankConfig(),
    "baro": RankConfig(
        scoring=ScoringConfig(
            window_s=math.inf,
            rel_floor=0.0,
            sustain=1,
            peer=False,
            scale="iqr",
            level_s=None,
            flat_scale="skip",
            z_cap=math.inf,
        ),
        symptom_weight=1.0,
    ),
    "nsigma": RankConfig(
        scoring=ScoringConfig(
            window_s=math.inf,
            rel_floor=0.0,
            sustain=1,
            peer=False,
            scale="std",
            level_s=None,
            flat_scale="skip",
            z_cap=math.inf,
        ),
        symptom_weight=1.0,
    ),
}


@dataclass(frozen=True)
class CaseResult:
    case: str
    service: str
    fault: str
    expected_type: str | None
    position: int | None  # 1-based rank of the true service; None when it is not ranked
    n_services: int
    top: list[str]
    top_score: float
    predicted_type: str  # fault type of the top hypothesis
    true_service_type: str | None  # fault type the ranking gives the true service
    evidence: list[str]  # strongest metrics (and edges) of the top hypothesis
    seconds: float
    error: str | None = None  # why the case could not be ranked (then it is a miss)
    edges: int = 0  # edges of the service graph given to the ranking
    edges_after: int = 0  # of which with calls in the window after the anomaly time
    true_service_edges: list[str] = field(default_factory=list)  # departed edges blamed on it


@dataclass(frozen=True)
class Summary:
    n: int
    ac1: float
    ac3: float
    avg5: float
    random_ac1: float
    random_ac3: float
    random_avg5: float
    type_accuracy: float | None  # fault type of the top hypothesis vs the case's label
    type_accuracy_true_service: float | None
    unranked: int = 0  # cases that could not be ranked (counted as misses)


def evaluate_case(
    case: Case,
    config: RankConfig,
    offset_s: float = 0.0,
    call_graph: Sequence[tuple[str, str]] = (),
    *,
    use_edges: bool = True,
) -> CaseResult:
    """Rank one case with the anomaly time = injection time + offset_s; a case that cannot be
    ranked is a miss whose `error` says why."""
    edges = case.edges if use_edges else ()
    started = time.perf_counter()
    try:
        ranking = rank(
            case.matrix,
            case.inject_time + offset_s,
            call_graph=call_graph,
            config=config,
            edges=edges,
        )
    except RcaInputError as exc:
        return miss(case.name, case.service, case.fault, f"{case.path}: {exc}",
                    len(case.matrix.services), edges=len(edges))  # fmt: skip
    seconds = time.perf_counter() - started
    at, window = case.inject_time + offset_s, config.scoring.window_s
    after = sum(1 for e in edges if np.any((e.times >= at) & (e.times < at + window)))
    services = ranking.services
    position = services.index(case.service) + 1 if case.service in services else None
    top = ranking.ranked[0]
    true = next((r for r in ranking.ranked if r.service == case.service), None)
    return CaseResult(
        case=case.name,
        service=case.service,
        fault=case.fault,
        expected_type=case.fault_type.value if case.fault_type else None,
        position=position,
        n_services=len(case.matrix.services),
        top=services[:5],
        top_score=top.score,
        predicted_type=top.fault.value,
        true_service_type=true.fault.value if true else None,
        evidence=[f"{e.column} z={e.score:.1f} peer={e.peer_score:.1f}" for e in top.evidence[:3]]
        + [describe_edge(e) for e in top.edges[:2]],
        seconds=seconds,
        edges=len(edges),
        edges_after=after,
        true_service_edges=[describe_edge(e) for e in true.edges[:3]] if true else [],
    )


def miss(
    name: str, service: str, fault: str, reason: str, n_services: int, *, edges: int = 0
) -> CaseResult:
    """A case that could not be ranked: it counts, as a miss, with its reason."""
    fault_type = FAULT_TYPES.get(fault.lower().replace("_", "-"))
    return CaseResult(
        case=name,
        service=service,
        fault=fault,
        expected_type=fault_type.value if fault_type else None,
        position=None,
        n_services=n_services,
        top=[],
        top_score=0.0,
        predicted_type="-",
        true_service_type=None,
        evidence=[],
        seconds=0.0,
        error=reason,
        edges=edges,
    )


def summarise(results: Sequence[CaseResult]) -> Summary:
    n = len(results)

    def ac(k: int) -> float:
        return sum(1 for r in results if r.position is not None and r.position <= k) / n

    def rnd(k: int) -> float:
        return sum(min(k, r.n_services) / r.n_services for r in results if r.n_services) / n

    typed = [r for r in results if r.expected_type is not None]
    return Summary(
        n=n,
        ac1=ac(1),
        ac3=ac(3),
        avg5=sum(ac(k) for k in range(1, 6)) / 5,
        random_ac1=rnd(1),
        random_ac3=rnd(3),
        random_avg5=sum(rnd(k) for k in range(1, 6)) / 5,
        type_accuracy=(
            sum(1 for r in typed if r.predicted_type == r.expected_type) / len(typed)
            if typed
            else None
        ),
        type_accuracy_true_service=(
            sum(1 for r in typed if r.true_service_type == r.expected_type) / len(typed)
            if typed
            else None
        ),
        unranked=sum(1 for r in results if r.error),
    )


@dataclass(frozen=True)
class Evaluation:
    """One setting over every case: per case, overall, per fault type and per system."""

    results: list[CaseResult]
    overall: Summary
    by_fault: dict[str, Summary]
    by_system: dict[str, Summary]


def evaluate(
    cases: Sequence[Case],
    config: RankConfig,
    offset_s: float = 0.0,
    call_graph: Sequence[tuple[str, str]] = (),
    *,
    use_edges: bool = True,
    broken: Sequence[BrokenCase] = (),
    systems: Mapping[str, str] | None = None,
) -> Evaluation:
    """Every case ranked (the broken ones counted as misses), sorted by case name."""
    if cases:  # the first ranking in a process pays one-time costs: not a per-case figure
        with contextlib.suppress(RcaInputError):
            rank(cases[0].matrix, cases[0].inject_time + offset_s, config=config)
    results = [evaluate_case(c, config, offset_s, call_graph, use_edges=use_edges) for c in cases]
    typical = sorted(r.n_services for r in results)[len(results) // 2] if results else 0
    results += [miss(b.name, b.service, b.fault, b.reason, typical) for b in broken]
    results.sort(key=lambda r: r.case)
    by_system = (
        group(results, lambda r: systems.get(r.case, "?"))
        if systems and len(set(systems.values())) > 1
        else {}
    )
    return Evaluation(results, summarise(results), group(results, lambda r: r.fault), by_system)


def group(results: Sequence[CaseResult], key: Callable[[CaseResult], str]) -> dict[str, Summary]:
    groups: dict[str, list[CaseResult]] = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    return {k: summarise(rs) for k, rs in sorted(groups.items())}


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="folder of cases: DIR/<service>_<fault>/<n>/{metrics.csv,inject_time.txt[,edges.csv]}",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--method",
        choices=sorted(METHODS),
        default="aiops",
        help="ranking method (default aiops; baro and nsigma for comparison)",
    )
    p.add_argument(
        "--offset",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="shift the anomaly time by this many seconds (t_delta; e.g. 60)",
    )
    p.add_argument(
        "--onset-search",
        type=float,
        default=None,
        metavar="SECONDS",
        help="treat the time as a detector alarm: estimate the onset up to this far before it",
    )
    p.add_argument(
        "--graph",
        type=Path,
        default=None,
        metavar="FILE",
        help="call graph for every case: one 'caller,callee' per line (service names as in the"
        " column prefixes; '#' starts a comment)",
    )
    p.add_argument(
        "--no-edges",
        action="store_true",
        help="ignore the cases' edges.csv (by default a folder with edges is scored both with "
        "and without them)",
    )
    p.add_argument("--cases", action="store_true", help="also list every case (plain output)")


def run(args: argparse.Namespace) -> int:
    try:
        cases, broken = scan_cases(args.data)
        systems = load_systems(args.data)
        graph = read_call_graph(args.graph) if args.graph else []
    except CaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not cases:
        print(f"error: {args.data}: no case could be read:", file=sys.stderr)
        for b in broken:
            print(f"  {b.reason}", file=sys.stderr)
        return 2
    config = METHODS[args.method]
    if args.onset_search:
        config = dataclasses.replace(config, onset_search_s=args.onset_search)
    settings = [False] if args.no_edges or not any(c.edges for c in cases) else [True, False]
    runs = {
        use: evaluate(
            cases, config, args.offset, graph, use_edges=use, broken=broken, systems=systems
        )
        for use in settings
    }
    if args.json:
        print(json.dumps(report.as_json(args, runs), indent=2))
    else:
        for line in report.plain(args, runs):
            print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiops eval rca", description=__doc__)
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
