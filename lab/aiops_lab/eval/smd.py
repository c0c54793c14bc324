"""`aiops eval smd`: the multivariate detector on an SMD/ASD-style corpus.

Per entity: fit on train/ only (the threshold comes from the detector's scores on train/ with
constants frozen on SMD dev), score test/ causally, then compare with test_label/
and interpretation_label/. Every figure is shown next to a random baseline.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from aiops.detect.multivariate import MultivariateConfig, MultivariateDetector
from aiops.detect.presets import MULTIVARIATE_CONFIG, MULTIVARIATE_GRID, MULTIVARIATE_WIDE_GRID
from aiops_lab.eval.datasets_io import DatasetError
from aiops_lab.eval.smd_cv import CvResult, cross_validate
from aiops_lab.eval.smd_io import Entity, entity_names, load_entity, ranges_are_inclusive
from aiops_lab.eval.smd_metrics import (
    auprc,
    best_f1,
    hit_rate,
    point_adjust,
    prf,
    random_hit_rate,
)

METRICS = ("precision", "recall", "f1", "f1_pa", "auprc", "hitrate_100", "hitrate_150")


def evaluate_entity(ent: Entity, seed: int = 0) -> dict[str, Any]:
    det = MultivariateDetector(MULTIVARIATE_CONFIG)
    det.fit(ent.train)
    found = det.detect(ent.test)
    scores, blame, pred = found.scores, found.blame, found.alarms
    p, r, f = prf(pred, ent.labels)
    _, _, f_pa = prf(point_adjust(pred, ent.labels), ent.labels)
    oracle_f1, _ = best_f1(scores, ent.labels)
    ours = {
        "precision": p,
        "recall": r,
        "f1": f,
        "f1_pa": f_pa,
        "auprc": auprc(scores, ent.labels),
        "hitrate_100": hit_rate(blame, ent.segments, 100),
        "hitrate_150": hit_rate(blame, ent.segments, 150),
        "oracle_best_f1": oracle_f1,
        "threshold": det.model.threshold if det.model else float("nan"),
    }
    rnd_scores = np.random.default_rng(seed).random(len(ent.test))
    rf1, rthr = best_f1(rnd_scores, ent.labels)
    rpred = rnd_scores >= rthr
    rp, rr, _ = prf(rpred, ent.labels)
    # Point adjustment has its own oracle threshold (usually much lower), as in the literature.
    rf_pa = max(
        prf(point_adjust(rnd_scores >= q, ent.labels), ent.labels)[2]
        for q in np.linspace(0.0, 1.0, 101)
    )
    n_dims = ent.test.shape[1]
    rand = {
        "precision": rp,
        "recall": rr,
        "f1": rf1,
        "f1_pa": rf_pa,
        "auprc": auprc(rnd_scores, ent.labels),
        "hitrate_100": random_hit_rate(ent.segments, n_dims, 100),
        "hitrate_150": random_hit_rate(ent.segments, n_dims, 150),
    }
    return {
        "entity": ent.name,
        "rows_train": len(ent.train),
        "rows_test": len(ent.test),
        "dims": n_dims,
        "anomalous_rows": int(ent.labels.sum()),
        "segments": len(ent.segments),
        "detector": ours,
        "random": rand,
    }


def evaluate_folder(
    root: Path, inclusive: bool | None = None, only: list[str] | None = None
) -> dict[str, Any]:
    names = entity_names(root)
    if only:
        missing = sorted(set(only) - set(names))
        if missing:
            raise DatasetError(root / "train", f"no entity named {missing[0]}")
        names = [n for n in names if n in only]
    incl = ranges_are_inclusive(root) if inclusive is None else inclusive
    per = [evaluate_entity(load_entity(root, n, incl)) for n in names]
    mean = {
        side: {m: float(np.nanmean([e[side][m] for e in per])) for m in METRICS}
        for side in ("detector", "random")
    }
    mean["detector"]["oracle_best_f1"] = float(
        np.mean([e["detector"]["oracle_best_f1"] for e in per])
    )
    return {
        "entities": per,
        "mean": mean,
        "interpretation_ranges": "inclusive" if incl else "end-exclusive",
        "threshold_rule": _rule_text(MULTIVARIATE_CONFIG),
        "random_rule": "U(0,1) scores with oracle thresholds (best F1; best F1_PA on a 0.01 "
        "grid); HitRate = expected value of a uniformly random ranking",
        "hitrate_segments": "all interpretation segments",
    }


def _rule_text(c: MultivariateConfig) -> str:
    if c.threshold_rule == "spot":
        source = f"a GPD tail at risk {c.risk} over the detector's scores on train"
    else:
        source = (
            f"{c.threshold_margin} x {c.threshold_quantile:.0%} quantile of its scores on train"
        )
        if c.calibration_rows:
            source += (
                f", or, when lower, the same of its last {c.calibration_rows} quiet scores "
                "(train's last, then test's, causally)"
            )
    return (
        f"per entity, no test labels: max({c.threshold}, {source}); constants frozen on smd-dev "
        "in aiops.detect.presets.MULTIVARIATE_CONFIG"
    )


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="folder with train/, test/, test_label/, interpretation_label/",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--entity",
        action="append",
        default=None,
        help="only this entity (repeatable), e.g. machine-1-2",
    )
    p.add_argument(
        "--cv",
        action="store_true",
        help="also cross-validate: leave one entity out, choose the settings of "
        "aiops.detect.presets.MULTIVARIATE_GRID on the others, score the held-out one",
    )
    p.add_argument(
        "--wide",
        action="store_true",
        help="with --cv: the wide grid (MULTIVARIATE_WIDE_GRID, the scoring too: every machine "
        "scored 9 times, each replayed under every rule; long)",
    )
    p.add_argument(
        "--pool",
        type=Path,
        action="append",
        default=[],
        help="with --cv: choose the settings on this corpus's entities too (repeatable; each "
        "corpus weighs as much as --data's; its entities are held out in turn as well)",
    )
    p.add_argument(
        "--ranges",
        choices=("auto", "inclusive", "exclusive"),
        default="auto",
        help="interpretation_label range ends: SMD exclusive, ASD inclusive "
        "(auto: inclusive when anomaly_type.txt is present)",
    )


def run(args: argparse.Namespace) -> int:
    if args.pool and not args.cv:
        print("error: --pool only adds corpora to the cross-validation; add --cv")
        return 2
    incl = None if args.ranges == "auto" else args.ranges == "inclusive"
    try:
        res = evaluate_folder(args.data, incl, args.entity)
        cv = (
            _cross_validate(args.data, args.pool, incl, args.entity, args.wide) if args.cv else None
        )
    except DatasetError as exc:
        print(f"error: {exc}")
        return 2
    if cv is not None:
        res["cv"] = asdict(cv)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    head = f"{'entity':14s} " + " ".join(
        f"{h:>8s}" for h in ("P", "R", "F1", "F1_PA", "AUPRC", "HR@100", "HR@150")
    )
    print(f"threshold: {res['threshold_rule']}")
    print(head)
    for e in res["entities"]:
        d = e["detector"]
        print(f"{e['entity']:14s} " + " ".join(f"{d[m]:8.3f}" for m in METRICS))
    for side, label in (("detector", "mean"), ("random", "random")):
        d = res["mean"][side]
        print(f"{label:14s} " + " ".join(f"{d[m]:8.3f}" for m in METRICS))
    print(
        f"(random: {res['random_rule']}; detector oracle best-F1 for reference: "
        f"{res['mean']['detector']['oracle_best_f1']:.3f})"
    )
    if cv is not None:
        _print_cv(cv, [e["entity"] for e in res["entities"]])
    print(f"SMD point-wise F1: {res['mean']['detector']['f1']:.4f}")
    return 0


def _cross_validate(
    root: Path, pool: list[Path], inclusive: bool | None, only: list[str] | None, wide: bool
) -> CvResult:
    entities: list[Entity] = []
    weights: list[float] = []
    for i, corpus in enumerate([root, *pool]):
        names = [n for n in entity_names(corpus) if i > 0 or not only or n in only]
        taken = {e.name for e in entities} & set(names)
        if taken:
            raise DatasetError(corpus / "train", f"entity {sorted(taken)[0]} is in two corpora")
        incl = ranges_are_inclusive(corpus) if inclusive is None else inclusive
        entities += [load_entity(corpus, n, incl) for n in names]
        weights += [1.0 / len(names)] * len(names)
    grid = MULTIVARIATE_WIDE_GRID if wide else MULTIVARIATE_GRID
    return cross_validate(entities, MULTIVARIATE_CONFIG, grid, weights)


def _print_cv(cv: CvResult, reported: list[str]) -> None:
    print("leave one entity out (settings chosen on the other entities):")
    print(f"{'held-out entity':16s} {'F1':>6s}  chosen")
    for f in cv.folds:
        chosen = ", ".join(f"{k}={v}" for k, v in f.choice.items())
        print(f"{f.entity:16s} {f.f1:6.3f}  {chosen}")
    full = ", ".join(f"{k}={v}" for k, v in cv.full_choice.items())
    held = np.mean([f.f1 for f in cv.folds if f.entity in reported])
    print(
        f"point-wise F1, leave-one-entity-out: {held:.4f} "
        f"(full split {np.mean([cv.full_by_entity[n] for n in reported]):.4f} with {full})"
    )
    if len(cv.folds) > len(reported):
        print(f"(every pooled entity held out in turn: {cv.cv_f1:.4f})")
