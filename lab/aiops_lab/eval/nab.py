"""`aiops eval nab`: score the shipped detector on a NAB corpus with NAB's official scorer."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aiops.detect.novelty import NoveltyDetector
from aiops.detect.presets import (
    NOVELTY_CONFIG,
    NOVELTY_GRID,
    NOVELTY_THRESHOLD,
    NOVELTY_WIDE_GRID,
    SEASON_SECONDS,
)
from aiops_lab.eval.datasets_io import DatasetError
from aiops_lab.eval.nab_cv import CvResult, cross_validate
from aiops_lab.eval.nab_io import NabCorpus, NabFile, load_corpus
from aiops_lab.eval.nab_scoring import (
    FileLayout,
    FileScore,
    Profile,
    layout_file,
    normalise,
    score_file,
    sweep_threshold,
)

FloatArray = npt.NDArray[np.float64]
PERIOD_ROWS = 20


def season_period(ts: npt.NDArray[np.datetime64]) -> int:
    """Samples per day from the median step of the first rows (0 if too short to tell).

    Only the opening rows are used, as a live system knows its scrape interval up front; looking
    at the whole file would leak information from the future into early scores.
    """
    head = ts[:PERIOD_ROWS]
    if len(head) < 3:
        return 0
    step = float(np.median(np.diff(head).astype("timedelta64[s]").astype(np.float64)))
    if step <= 0:
        return 0
    return max(round(SEASON_SECONDS / step), 0)


def detect_corpus(files: list[NabFile]) -> list[FloatArray]:
    """Run the shipped detector causally over every file at once (one column per file)."""
    if not files:
        return []
    longest = max(len(f.values) for f in files)
    x = np.full((longest, len(files)), np.nan)
    for j, f in enumerate(files):
        x[: len(f.values), j] = f.values  # padding at the end is NaN: never scored, never learned
    periods = np.array([season_period(f.timestamps) for f in files])
    det = NoveltyDetector(len(files), NOVELTY_CONFIG, period=periods)
    scores = det.score(x)
    return [scores[: len(f.values), j].copy() for j, f in enumerate(files)]


def evaluate(corpus: NabCorpus, scores: list[FloatArray], threshold: float) -> dict[str, Any]:
    layouts = [layout_file(f.name, f.timestamps, corpus.windows[f.name]) for f in corpus.files]
    n_windows = sum(lay.n_windows for lay in layouts)
    out: dict[str, Any] = {
        "files": len(layouts),
        "windows": n_windows,
        "rows": int(sum(lay.n_rows for lay in layouts)),
        "profiles": {},
    }
    for prof in corpus.profiles:
        shipped = _at_threshold(layouts, scores, threshold, prof)
        thr, raw = sweep_threshold(layouts, scores, prof)
        out["profiles"][prof.name] = {
            "shipped": {
                "threshold": threshold,
                **shipped,
                "score": normalise(shipped["raw"], n_windows, prof),
            },
            "optimised": {"threshold": thr, "raw": raw, "score": normalise(raw, n_windows, prof)},
        }
    return out


def _at_threshold(
    layouts: list[FileLayout], scores: list[FloatArray], threshold: float, prof: Profile
) -> dict[str, Any]:
    per: list[FileScore] = [
        score_file(lay, s >= threshold, prof) for lay, s in zip(layouts, scores, strict=True)
    ]
    return {"raw": sum(p.score for p in per), "per_file": [asdict(p) for p in per]}


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="NAB folder with data/<category>/<file>.csv and labels/",
    )
    p.add_argument(
        "--windows",
        type=Path,
        default=None,
        help="windows JSON (default: DATA/labels/combined_windows.json)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--cv",
        action="store_true",
        help="also cross-validate: leave one category out, choose the settings of "
        "aiops.detect.presets.NOVELTY_GRID on the others, score the held-out one",
    )
    p.add_argument(
        "--wide",
        action="store_true",
        help="with --cv: the wide grid (NOVELTY_WIDE_GRID, smoothings too; ~1 min)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        corpus = load_corpus(args.data, args.windows)
    except DatasetError as exc:
        print(f"error: {exc}")
        return 2
    scores = detect_corpus(corpus.files)
    result = evaluate(corpus, scores, NOVELTY_THRESHOLD)
    result["detector"] = "novelty"
    result["threshold_rule"] = (
        f"shipped: each series' own SPOT threshold at risk {NOVELTY_CONFIG.risk:g} "
        "(aiops.detect.spot), settings frozen in aiops.detect.presets, chosen by "
        "cross-validation on nab-dev; optimised: NAB sweep over this corpus (oracle)"
    )
    cv = _cross_validate(corpus, args.wide) if args.cv else None
    if cv is not None:
        result["cv"] = asdict(cv)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"NAB: {result['files']} files, {result['rows']} rows, {result['windows']} windows; "
        f"detector novelty, shipped threshold {NOVELTY_THRESHOLD} (per-series calibrated score)"
    )
    std = result["profiles"].get("standard")
    if std is not None:
        print(f"{'file':58s} {'score':>7s} {'win':>5s} {'TP':>4s} {'FP':>4s}")
        for row in std["shipped"]["per_file"]:
            print(
                f"{row['name']:58s} {row['score']:7.3f} "
                f"{row['windows_detected']}/{row['n_windows']:<3d} {row['tp']:4d} {row['fp']:4d}"
            )
    print(
        f"{'profile':22s} {'shipped thr':>12s} {'score':>7s} {'optimised thr':>14s} {'score':>7s}"
    )
    for name, r in result["profiles"].items():
        print(
            f"{name:22s} {r['shipped']['threshold']:12.6f} {r['shipped']['score']:7.2f} "
            f"{r['optimised']['threshold']:14.6f} {r['optimised']['score']:7.2f}"
        )
    if cv is not None:
        _print_cv(cv)
    if std is not None:
        print(f"NAB standard: {std['shipped']['score']:.2f}")
    return 0


def _cross_validate(corpus: NabCorpus, wide: bool) -> CvResult:
    periods = np.array([season_period(f.timestamps) for f in corpus.files])
    grid = NOVELTY_WIDE_GRID if wide else NOVELTY_GRID
    return cross_validate(corpus, NOVELTY_CONFIG, grid, periods)


def _print_cv(cv: CvResult) -> None:
    print("leave one category out (settings chosen on the other categories):")
    print(f"{'held-out category':24s} {'windows':>7s} {'raw':>7s}  chosen")
    for f in cv.folds:
        chosen = ", ".join(f"{k}={v}" for k, v in f.choice.items())
        print(f"{f.category:24s} {f.windows:7d} {f.raw:7.3f}  {chosen}")
    full = ", ".join(f"{k}={v}" for k, v in cv.full_choice.items())
    print(
        f"NAB standard, leave-one-category-out: {cv.cv_score:.2f} "
        f"(full split {cv.full_score:.2f} with {full})"
    )
