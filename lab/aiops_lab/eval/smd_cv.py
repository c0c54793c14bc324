"""`aiops eval smd --cv`: leave-one-machine-out cross-validation of the multivariate detector.

For each entity (machine) in turn, every setting of the grid (aiops.detect.presets.
MULTIVARIATE_GRID, or the wider one) is chosen on the other entities (the largest mean
point-wise F1, each entity's threshold from its own training scores by the rule being chosen)
and the held-out entity is scored with that choice. The mean held-out F1 is the cross-validated
figure; the choice made on all entities is the full-split figure and must be what presets.py
ships.

Cheap by construction: the detector's scores do not depend on the threshold rule, so each
entity is scored once per combination of the settings that shape its scores; every threshold
rule is then replayed over the recorded scores (training scores, then the test scores in order,
as the detector's calibration would have seen them).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aiops.detect.multivariate import MultivariateConfig, MultivariateDetector, replay_thresholds
from aiops_lab.eval.smd_io import Entity
from aiops_lab.eval.smd_metrics import prf

FloatArray = npt.NDArray[np.float64]
#: Settings of the threshold rule: they act on the recorded scores; the rest shape the scores.
RULE_SETTINGS = frozenset(
    {
        "threshold",
        "threshold_quantile",
        "threshold_margin",
        "threshold_rule",
        "risk",
        "spot_level",
        "calibration_rows",
        "calibration_guard",
    }
)


@dataclass(frozen=True)
class Fold:
    entity: str
    choice: dict[str, Any]
    f1: float  # held-out point-wise F1


@dataclass(frozen=True)
class CvResult:
    folds: list[Fold]
    cv_f1: float  # mean held-out F1
    full_choice: dict[str, Any]
    full_f1: float
    full_by_entity: dict[str, float]  # each entity's F1 with the full-split choice
    grid: dict[str, tuple[Any, ...]]


def _combinations(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*grid.values())]


def rule_combinations(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The threshold rules of the grid; settings one rule does not read are not multiplied."""
    rules = _combinations({k: v for k, v in grid.items() if k in RULE_SETTINGS})
    seen: set[tuple[tuple[str, Any], ...]] = set()
    out = []
    for r in rules:
        unused = (
            {"threshold_quantile", "threshold_margin", "calibration_rows", "calibration_guard"}
            if r.get("threshold_rule") == "spot"
            else {"risk", "spot_level"}
        )
        if r.get("calibration_rows") == 0:
            unused = unused | {"calibration_guard"}
        used = {k: v for k, v in r.items() if k not in unused}
        key = tuple(sorted(used.items()))
        if key not in seen:
            seen.add(key)
            out.append(used)
    return out


def cross_validate(
    entities: Sequence[Entity],
    base: MultivariateConfig,
    grid: Mapping[str, Sequence[Any]],
    weights: Sequence[float] | None = None,
) -> CvResult:
    """Leave each entity out in turn; `weights` weigh the entities' F1 when choosing (each
    corpus as much as another, when several are pooled), the figures are plain means."""
    w = np.ones(len(entities)) if weights is None else np.asarray(weights, dtype=np.float64)
    shape_grid = {k: v for k, v in grid.items() if k not in RULE_SETTINGS}
    choices: list[dict[str, Any]] = []
    rows: list[FloatArray] = []  # per choice, per entity F1
    for shape in _combinations(shape_grid):
        config = dataclasses.replace(base, **shape)
        scored = []
        for ent in entities:
            det = MultivariateDetector(config)
            det.fit(ent.train)
            test, _ = det.score(ent.test)
            scored.append((det.train_scores, test))
        for rule in rule_combinations(grid):
            chosen = dataclasses.replace(config, **rule)
            f1 = [
                prf(test >= replay_thresholds(train, test, chosen), ent.labels)[2]
                for ent, (train, test) in zip(entities, scored, strict=True)
            ]
            choices.append({**shape, **rule})
            rows.append(np.array(f1))
    table = np.stack(rows)  # [choices, entities]
    folds = []
    for i, ent in enumerate(entities):
        others = [j for j in range(len(entities)) if j != i]
        best = int(np.argmax(table[:, others] @ w[others]))  # first of ties: grid order
        folds.append(Fold(ent.name, choices[best], float(table[best, i])))
    full = int(np.argmax(table @ w))
    return CvResult(
        folds=folds,
        cv_f1=float(np.mean([f.f1 for f in folds])),
        full_choice=choices[full],
        full_f1=float(table[full].mean()),
        full_by_entity={e.name: float(f) for e, f in zip(entities, table[full], strict=True)},
        grid={k: tuple(v) for k, v in grid.items()},
    )
