"""`aiops eval rca --data DIR [--json]`: service-level AC@1, AC@3, Avg@5 over RCAEval-layout cases.

AC@k is the share of cases whose root-cause service is among the top k; Avg@5 is the mean of AC@1
to AC@5 (RCAEval ASE'24 §3.2, BARO FSE'24 Eq. 6). Next to every figure is what a uniformly random
ranking of the same services would score, and the accuracy of the fault type the planner would get.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiops.rca import RankConfig, RcaInputError, ScoringConfig, rank
from aiops_lab.eval.rca_cases import (
    Case,
    CaseError,
    load_cases,
    load_systems,
    read_call_graph,
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
    evidence: list[str]  # strongest metrics of the top hypothesis
    seconds: float


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


def evaluate_case(
    case: Case,
    config: RankConfig,
    offset_s: float = 0.0,
    call_graph: Sequence[tuple[str, str]] = (),
) -> CaseResult:
    """Rank one case with the anomaly time = injection time + offset_s."""
    started = time.perf_counter()
    try:
        ranking = rank(
            case.matrix, case.inject_time + offset_s, call_graph=call_graph, config=config
        )
    except RcaInputError as exc:
        raise CaseError(f"{case.path}: {exc}") from None
    seconds = time.perf_counter() - started
    services = ranking.services
    position = services.index(case.service) + 1 if case.service in services else None
    top = ranking.ranked[0]
    true_type = next((r.fault for r in ranking.ranked if r.service == case.service), None)
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
        true_service_type=true_type.value if true_type else None,
        evidence=[f"{e.column} z={e.score:.1f} peer={e.peer_score:.1f}" for e in top.evidence[:3]],
        seconds=seconds,
    )


def summarise(results: Sequence[CaseResult]) -> Summary:
    n = len(results)

    def ac(k: int) -> float:
        return sum(1 for r in results if r.position is not None and r.position <= k) / n

    def rnd(k: int) -> float:
        return sum(min(k, r.n_services) / r.n_services for r in results) / n

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
    )


def evaluate(
    cases: Sequence[Case],
    config: RankConfig,
    offset_s: float = 0.0,
    call_graph: Sequence[tuple[str, str]] = (),
) -> tuple[list[CaseResult], Summary, dict[str, Summary]]:
    results = [evaluate_case(c, config, offset_s, call_graph) for c in cases]
    return results, summarise(results), group(results, lambda r: r.fault)


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
        help="folder of cases: DIR/<service>_<fault>/<n>/{metrics.csv,inject_time.txt}",
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
    p.add_argument("--cases", action="store_true", help="also list every case (plain output)")


def run(args: argparse.Namespace) -> int:
    try:
        cases = load_cases(args.data)
        config = METHODS[args.method]
        if args.onset_search:
            config = dataclasses.replace(config, onset_search_s=args.onset_search)
        graph = read_call_graph(args.graph) if args.graph else []
        results, overall, by_fault = evaluate(cases, config, args.offset, graph)
        systems = load_systems(args.data)
    except CaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    by_system = (
        group(results, lambda r: systems.get(r.case, "?")) if len(set(systems.values())) > 1 else {}
    )
    if args.json:
        doc: dict[str, Any] = {
            "data": str(args.data),
            "method": args.method,
            "offset_s": args.offset,
            "onset_search_s": args.onset_search,
            "graph": str(args.graph) if args.graph else None,
            "overall": asdict(overall),
            "by_fault": {f: asdict(s) for f, s in by_fault.items()},
            "by_system": {k: asdict(s) for k, s in by_system.items()},
            "cases": [asdict(r) for r in results],
        }
        print(json.dumps(doc, indent=2))
        return 0
    refine = f", onset searched {args.onset_search:.0f} s back" if args.onset_search else ""
    if args.graph:
        refine += f", call graph {args.graph}"
    print(
        f"RCA evaluation of {args.data}: {overall.n} cases, method {args.method}, "
        f"anomaly time = injection {args.offset:+.0f} s{refine}"
    )
    header = (
        f"{'group':<24}{'n':>4}  {'AC@1':>5} {'AC@3':>5} {'Avg@5':>5}   "
        f"{'random AC@1':>11} {'AC@3':>5} {'Avg@5':>5}   {'type acc':>8}"
    )
    print(header)
    rows = [
        *by_fault.items(),
        *((f"system {k}", v) for k, v in by_system.items()),
        ("overall", overall),
    ]
    for name, s in rows:
        acc = "-" if s.type_accuracy is None else f"{s.type_accuracy:.2f}"
        print(
            f"{name:<24}{s.n:>4}  {s.ac1:>5.2f} {s.ac3:>5.2f} {s.avg5:>5.2f}   "
            f"{s.random_ac1:>11.2f} {s.random_ac3:>5.2f} {s.random_avg5:>5.2f}   {acc:>8}"
        )
    if overall.type_accuracy_true_service is not None:
        print(
            f"fault type of the true service (whatever its rank): "
            f"{overall.type_accuracy_true_service:.2f}"
        )
    if args.cases:
        print()
        print(f"{'case':<44}{'rank':>5}  {'type':<13}{'top 3':<60}")
        for r in results:
            pos = "-" if r.position is None else str(r.position)
            print(f"{r.case:<44}{pos:>5}  {r.predicted_type:<13}{', '.join(r.top[:3]):<60}")
    times = [r.seconds for r in results]
    print(
        f"ranking time per case: mean {1000 * sum(times) / len(times):.1f} ms, "
        f"max {1000 * max(times):.1f} ms"
    )
    print(f"RCA AC@1: {overall.ac1:.3f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiops eval rca", description=__doc__)
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
