"""What `aiops eval rca` prints: tables per fault type and system, with and without the service
graph side by side, the cases that could not be ranked with their reasons, and the JSON document."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiops_lab.eval.rca import CaseResult, Evaluation, Summary


def placement(r: CaseResult) -> int:
    """The true service's rank; one past the last service when it is not ranked at all."""
    return r.position if r.position is not None else r.n_services + 1


def rank_changes(with_edges: Evaluation, without: Evaluation) -> list[tuple[str, int]]:
    """(case, rank with edges minus rank without); negative is better."""
    before = {r.case: placement(r) for r in without.results}
    return [(r.case, placement(r) - before[r.case]) for r in with_edges.results]


def _settings(args: argparse.Namespace) -> str:
    refine = f", onset searched {args.onset_search:.0f} s back" if args.onset_search else ""
    if args.graph:
        refine += f", call graph {args.graph}"
    return f"method {args.method}, anomaly time = injection {args.offset:+.0f} s{refine}"


def _row(name: str, s: Summary, other: Summary | None) -> str:
    acc = "-" if s.type_accuracy is None else f"{s.type_accuracy:.2f}"
    line = (
        f"{name:<24}{s.n:>4}  {s.ac1:>5.2f} {s.ac3:>5.2f} {s.avg5:>5.2f}   {acc:>8}   "
        f"{s.random_ac1:>6.2f} {s.random_ac3:>5.2f} {s.random_avg5:>5.2f}"
    )
    if other is not None:
        line += f"   {other.ac1:>5.2f} {other.ac3:>5.2f} {other.avg5:>5.2f}"
    return line


def plain(args: argparse.Namespace, runs: dict[bool, Evaluation]) -> list[str]:
    main = runs[True] if True in runs else runs[False]
    other = runs[False] if True in runs else None
    graph = "with the service graph (edges.csv)" if other is not None else "without edges"
    out = [
        f"RCA evaluation of {args.data}: {main.overall.n} cases, {_settings(args)}, {graph}",
        f"{'group':<24}{'n':>4}  {'AC@1':>5} {'AC@3':>5} {'Avg@5':>5}   {'type acc':>8}   "
        f"{'random':>6} {'AC@3':>5} {'Avg@5':>5}"
        + (f"   {'no edges':>5} {'AC@3':>5} {'Avg@5':>5}" if other is not None else ""),
    ]
    groups = [
        *((k, v, other.by_fault.get(k) if other else None) for k, v in main.by_fault.items()),
        *(
            (f"system {k}", v, other.by_system.get(k) if other else None)
            for k, v in main.by_system.items()
        ),
        ("overall", main.overall, other.overall if other else None),
    ]
    out += [_row(name, s, o) for name, s, o in groups]
    if main.overall.type_accuracy_true_service is not None:
        out.append(
            "fault type of the true service (whatever its rank): "
            f"{main.overall.type_accuracy_true_service:.2f}"
        )
    if other is not None:
        changes = rank_changes(main, other)
        mean = sum(d for _, d in changes) / len(changes)
        worst_case, worst = max(changes, key=lambda c: (c[1], c[0]))
        out.append(
            f"rank with edges minus without, per case: mean {mean:+.2f}, worst {worst:+d} "
            f"({worst_case})"
        )
    if args.cases:
        out += ["", _case_header(other is not None)]
        before = {r.case: r for r in other.results} if other is not None else {}
        out += [_case_line(r, before.get(r.case)) for r in main.results]
    unranked = [r for r in main.results if r.error]
    if unranked:
        out += ["", f"{len(unranked)} case(s) could not be ranked and count as misses:"]
        out += [f"  {r.case}: {r.error}" for r in unranked]
    times = [r.seconds for r in main.results if not r.error]
    if times:
        out.append(
            f"ranking time per case: mean {1000 * sum(times) / len(times):.1f} ms, "
            f"max {1000 * max(times):.1f} ms"
        )
    out.append(f"RCA AC@1: {main.overall.ac1:.3f}")
    return out


def _case_header(both: bool) -> str:
    no_edges = f"{'no edges':>9}" if both else ""
    return f"{'case':<44}{'rank':>5}{no_edges}  {'type':<16}{'top 3':<60}"


def _case_line(r: CaseResult, without: CaseResult | None) -> str:
    pos = "-" if r.position is None else str(r.position)
    no_edges = ""
    if without is not None:
        no_edges = f"{'-' if without.position is None else str(without.position):>9}"
    line = f"{r.case:<44}{pos:>5}{no_edges}  {r.predicted_type:<16}{', '.join(r.top[:3])}"
    if r.position != 1 and r.edges:
        line += f"\n{'':<8}{r.edges} edges, {r.edges_after} with calls after the anomaly time"
        line += "".join(f"\n{'':<8}edge: {e}" for e in r.true_service_edges)
    return line


def as_json(args: argparse.Namespace, runs: dict[bool, Evaluation]) -> dict[str, Any]:
    main = runs[True] if True in runs else runs[False]

    def block(e: Evaluation) -> dict[str, Any]:
        return {
            "overall": asdict(e.overall),
            "by_fault": {f: asdict(s) for f, s in e.by_fault.items()},
            "by_system": {k: asdict(s) for k, s in e.by_system.items()},
            "cases": [asdict(r) for r in e.results],
        }

    doc: dict[str, Any] = {
        "data": str(args.data),
        "method": args.method,
        "offset_s": args.offset,
        "onset_search_s": args.onset_search,
        "graph": str(args.graph) if args.graph else None,
        "edges": True in runs,
        **block(main),
    }
    if True in runs and False in runs:
        doc["without_edges"] = block(runs[False])
        doc["rank_change"] = dict(rank_changes(runs[True], runs[False]))
    return doc
