"""`aiops eval smd --cv`: each held-out entity's rule is chosen without it; pooled corpora weigh
alike."""

from __future__ import annotations

import numpy as np
from aiops_lab.eval.smd_cv import cross_validate, rule_combinations
from aiops_lab.eval.smd_io import Entity

from aiops.detect.presets import MULTIVARIATE_CONFIG

GRID = {"threshold": (1.0, 1.5), "calibration_rows": (500, 0)}


def entity(name: str, seed: int, drift: float) -> Entity:
    """Quiet metrics that swing `drift` wider after training, and one fault."""
    rng = np.random.default_rng(seed)
    train = rng.uniform(0.2, 0.3, (1500, 4))
    test = rng.uniform(0.25 - drift / 2, 0.25 + drift / 2, (2000, 4))
    labels = np.zeros(2000, np.int8)
    test[1500:1540, 1] += 0.5
    labels[1500:1540] = 1
    return Entity(name, train, test, labels, [])


def test_folds_choose_without_the_held_out_entity() -> None:
    ents = [entity("a", 1, 0.2), entity("b", 2, 0.2), entity("c", 3, 0.1)]
    cv = cross_validate(ents, MULTIVARIATE_CONFIG, GRID)
    for i, fold in enumerate(cv.folds):
        alone = cross_validate(ents[:i] + ents[i + 1 :], MULTIVARIATE_CONFIG, GRID)
        assert fold.choice == alone.full_choice
        assert fold.f1 == cv.full_by_entity[fold.entity] or fold.choice != cv.full_choice
    assert cv.full_by_entity["a"] > 0.5


def test_weights_make_a_small_corpus_count_as_much_as_a_large_one() -> None:
    ents = [entity("a", 1, 0.2), entity("b", 2, 0.2), entity("c", 3, 0.1)]
    plain = cross_validate(ents, MULTIVARIATE_CONFIG, GRID)
    weighed = cross_validate(ents, MULTIVARIATE_CONFIG, GRID, weights=[0.0, 0.0, 1.0])
    only_c = cross_validate(ents[2:], MULTIVARIATE_CONFIG, GRID)
    assert weighed.full_choice == only_c.full_choice
    assert plain.full_f1 >= weighed.full_f1


def test_settings_a_rule_does_not_read_are_not_multiplied() -> None:
    rules = rule_combinations(
        {
            "threshold_rule": ("quantile",),
            "calibration_rows": (4320, 0),
            "calibration_guard": (60, 0),
        }
    )
    assert rules == [
        {"threshold_rule": "quantile", "calibration_rows": 4320, "calibration_guard": 60},
        {"threshold_rule": "quantile", "calibration_rows": 4320, "calibration_guard": 0},
        {"threshold_rule": "quantile", "calibration_rows": 0},
    ]
