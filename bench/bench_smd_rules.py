"""Benchmark: label-free alarm-threshold rules for the multivariate detector, held out on SMD.

Run: uv run python bench/bench_smd_rules.py [--data ../shared/datasets/smd-dev]
Scores every machine once with the shipped scoring, then, for each family of threshold rules,
chooses the family's settings on seven machines and scores the eighth (leave one machine out),
as `aiops eval smd --cv` does for the shipped family. Prints figures only; it is not a test
(~2 min on one core). Last, the shipped rule's sensitivity to the two lengths it fixes.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import dataclasses
import itertools
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from aiops_lab.eval.smd_io import Entity, entity_names, load_entity, ranges_are_inclusive
from aiops_lab.eval.smd_metrics import prf

from aiops.detect.calibration import RollingCalibration
from aiops.detect.multivariate import (
    MultivariateConfig,
    MultivariateDetector,
    alarm_threshold,
    replay_thresholds,
)
from aiops.detect.presets import MULTIVARIATE_CONFIG

Scores = tuple[np.ndarray, np.ndarray]  # training scores, test scores
Rule = Callable[..., np.ndarray]  # (train, test, **settings) -> threshold per test row
TRAINING = {"threshold": (1.2, 0.8, 1.0, 1.5), "q": (0.98, 0.95, 0.99), "m": (1.2, 1.0, 1.5)}


def held_out(
    entities: Sequence[Entity],
    scored: Sequence[Scores],
    grid: dict[str, tuple[Any, ...]],
    rule: Rule,
) -> tuple[float, float, list[float]]:
    combos = [dict(zip(grid, v, strict=True)) for v in itertools.product(*grid.values())]
    table = np.array(
        [
            [
                prf(te >= rule(tr, te, **c), e.labels)[2]
                for e, (tr, te) in zip(entities, scored, strict=True)
            ]
            for c in combos
        ]
    )
    folds = []
    for i in range(len(entities)):
        others = [j for j in range(len(entities)) if j != i]
        folds.append(float(table[int(np.argmax(table[:, others].mean(axis=1))), i]))
    return statistics.fmean(folds), float(table.mean(axis=1).max()), folds


def quantile_rule(threshold: float, q: float, m: float, rows: int) -> MultivariateConfig:
    return dataclasses.replace(
        MULTIVARIATE_CONFIG,
        threshold=threshold,
        threshold_quantile=q,
        threshold_margin=m,
        calibration_rows=rows,
    )


def training_rule(
    tr: np.ndarray, te: np.ndarray, threshold: float, q: float, m: float
) -> np.ndarray:
    return np.full(len(te), alarm_threshold(tr, quantile_rule(threshold, q, m, 0)))


def peak_envelope(te: np.ndarray, tau: float) -> np.ndarray:
    """The largest earlier score, decaying with time constant tau (rows)."""
    decay, out, cur = np.exp(-1.0 / tau), np.empty(len(te)), 0.0
    for i, s in enumerate(te):
        out[i] = cur
        cur = max(float(s), cur * decay)
    return out


def envelope_rule(tr: np.ndarray, te: np.ndarray, f: float, tau: float) -> np.ndarray:
    """The old training rule, raised to f x the recent peak (an incident's decaying tail)."""
    return np.maximum(training_rule(tr, te, 1.2, 0.98, 1.2), f * peak_envelope(te, tau))


def lower_only(
    tr: np.ndarray, te: np.ndarray, threshold: float, q: float, m: float, rows: int
) -> np.ndarray:
    """The shipped rule: recent quiet scores may lower the training threshold, never raise it."""
    return replay_thresholds(tr, te, quantile_rule(threshold, q, m, rows))


def replace(
    tr: np.ndarray, te: np.ndarray, threshold: float, q: float, m: float, rows: int
) -> np.ndarray:
    """Recent quiet scores alone set the threshold: it may rise above the training one."""
    g = MULTIVARIATE_CONFIG.calibration_guard
    cal = RollingCalibration(tr.tolist(), rows, q, m, threshold, g)
    out = np.empty(len(te))
    for t, s in enumerate(te):
        out[t] = cal.threshold
        cal.observe(float(s))
    return out


def median_mad(tr: np.ndarray, te: np.ndarray, k: float, rows: int) -> np.ndarray:
    """median + k x MAD of the last `rows` scores under the bar (floor 1.0); alarms not learnt."""
    window: deque[float] = deque(tr[-rows:].tolist(), maxlen=rows)
    out = np.empty(len(te))
    bar = 0.0
    for i, s in enumerate(te):
        if i % 20 == 0:  # every 20 rows: a day's median moves little in 20 minutes
            arr = np.fromiter(window, float)
            med = float(np.median(arr))
            bar = max(1.0, med + k * 1.4826 * float(np.median(np.abs(arr - med))))
        out[i] = bar
        if s < bar:
            window.append(float(s))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=Path("../shared/datasets/smd-dev"))
    args = p.parse_args()
    incl = ranges_are_inclusive(args.data)
    entities = [load_entity(args.data, n, incl) for n in entity_names(args.data)]
    scored: list[Scores] = []
    for e in entities:
        det = MultivariateDetector(MULTIVARIATE_CONFIG)
        det.fit(e.train)
        scored.append((det.train_scores, det.score(e.test)[0]))
    cal = {
        "threshold": (1.0, 0.8, 1.2),
        "q": (0.95, 0.98, 0.99),
        "m": (1.5, 1.0, 1.2),
        "rows": (4320, 1440, 8640),
    }
    families: list[tuple[str, dict[str, tuple[Any, ...]], Rule]] = [
        ("training scores only (the rule before)", TRAINING, training_rule),
        (
            "training rule, raised to f x decaying peak",
            {"f": (0.1, 0.2, 0.3), "tau": (300, 1000, 3000)},
            envelope_rule,
        ),
        (
            "median + k MAD of recent quiet scores",
            {"k": (4, 6, 9, 12), "rows": (1440, 4320)},
            median_mad,
        ),
        ("recent quiet scores may lower the training rule (shipped)", cal, lower_only),
        ("recent quiet scores replace the training rule", cal, replace),
    ]
    names = " ".join(e.name.removeprefix("machine-") for e in entities)
    print(f"{'rule family':58s} {'held out':>8s} {'full':>6s}  per machine ({names})")
    for label, grid, rule in families:
        cv, full, folds = held_out(entities, scored, grid, rule)
        print(f"{label:58s} {cv:8.3f} {full:6.3f}  " + " ".join(f"{f:.3f}" for f in folds))
    print("shipped rule, full split, with another guard / window (rows):")
    for guard in (0, 60, 360, 1440):
        for rows in (1440, 4320, 8640):
            c = dataclasses.replace(
                MULTIVARIATE_CONFIG, calibration_guard=guard, calibration_rows=rows
            )
            f1 = [
                prf(te >= replay_thresholds(tr, te, c), e.labels)[2]
                for e, (tr, te) in zip(entities, scored, strict=True)
            ]
            print(f"  guard {guard:4d}  window {rows:4d}: {statistics.fmean(f1):.3f}")


if __name__ == "__main__":
    main()
