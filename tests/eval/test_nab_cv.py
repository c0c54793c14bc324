"""`aiops eval nab --cv`: each category is scored with settings chosen on the others, the
post-processed novelty is exactly what the streaming detector alarms on, and the shipped
presets are what the cross-validation chooses on the whole development split."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from aiops_lab.eval import nab, nab_cv
from aiops_lab.eval.nab_io import load_corpus

from aiops.detect.novelty import NoveltyDetector
from aiops.detect.presets import NOVELTY_CONFIG, NOVELTY_GRID
from tests.eval.test_nab_cli import nab_dev, run


def _corpus(tmp_path: Path) -> Path:
    """Two categories whose anomalies want opposite settings: in `quiet` one lone spike per
    file (any record is news), in `busy` an anomaly right after a burst of records."""
    root = tmp_path / "nab"
    windows: dict[str, list[list[str]]] = {}
    rng = np.random.default_rng(0)
    start = np.datetime64("2020-01-01T00:00:00")
    for cat, n_files in (("quiet", 2), ("busy", 2)):
        (root / "data" / cat).mkdir(parents=True)
        for k in range(n_files):
            v = 10 + rng.uniform(-1, 1, 2000)
            at = 1500 + 37 * k
            if cat == "quiet":
                v[at] += 8
            else:
                v[1400:1420] += np.linspace(1, 6, 20)  # a burst of records first
                v[at] += 9
            ts = start + np.arange(2000) * np.timedelta64(300, "s")
            name = f"{cat}/f{k}.csv"
            lines = [f"{str(t).replace('T', ' ')},{x:.4f}" for t, x in zip(ts, v, strict=True)]
            (root / "data" / name).write_text("timestamp,value\n" + "\n".join(lines) + "\n")
            lo, hi = (str(ts[at - 20]).replace("T", " "), str(ts[at + 20]).replace("T", " "))
            windows[name] = [[lo + ".000000", hi + ".000000"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return root


def test_held_out_categories_are_scored_with_settings_chosen_on_the_others(
    tmp_path: Path,
) -> None:
    corpus = load_corpus(_corpus(tmp_path))
    periods = np.zeros(len(corpus.files), np.int64)
    grid = {"refractory": (100,), "risk": (0.3, 0.001)}
    cv = nab_cv.cross_validate(corpus, NOVELTY_CONFIG, grid, periods)
    assert [f.category for f in cv.folds] == ["busy", "quiet"]
    for fold in cv.folds:
        other = [f for f in corpus.files if nab_cv.category(f.name) != fold.category]
        alone = nab_cv.cross_validate(
            dataclasses.replace(corpus, files=other), NOVELTY_CONFIG, grid, periods[:2]
        )
        assert fold.choice == alone.full_choice  # chosen without the held-out files
    assert sum(f.windows for f in cv.folds) == 4


def test_post_processed_novelty_alarms_exactly_where_the_streaming_detector_does() -> None:
    rng = np.random.default_rng(4)
    x = np.cumsum(rng.normal(0, 1, (3000, 3)), axis=0)
    x[2000:2050, 1] = np.nan
    x[2500, 2] += 40
    config = dataclasses.replace(NOVELTY_CONFIG, refractory=30)
    periods = np.array([0, 48, 96])
    stream = NoveltyDetector(3, config, period=periods).score(x) >= 0.5
    nov = nab_cv.raw_novelty(x, periods, config)
    for j in range(3):
        post = nab_cv.detections(nov[:, j], np.isfinite(x[:, j]), config)
        np.testing.assert_array_equal(post, stream[:, j])


def test_the_dev_split_meets_the_target_and_presets_are_the_full_split_choice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = nab_dev()
    assert run(["--data", str(root), "--cv"]) == 0
    out = capsys.readouterr().out.splitlines()
    line = next(x for x in out if x.startswith("NAB standard, leave-one-category-out: "))
    assert float(line.split(": ")[1].split()[0]) >= 68.0
    corpus = load_corpus(root)
    periods = np.array([nab.season_period(f.timestamps) for f in corpus.files])
    cv = nab_cv.cross_validate(corpus, NOVELTY_CONFIG, NOVELTY_GRID, periods)
    assert cv.full_choice == {k: getattr(NOVELTY_CONFIG, k) for k in cv.full_choice}
