"""NAB scoring: the official rules on small hand-made files, and the numenta reference."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from aiops_lab.eval.nab_io import load_corpus
from aiops_lab.eval.nab_scoring import (
    DEFAULT_PROFILES,
    layout_file,
    normalise,
    probationary_length,
    score_file,
    sweep_threshold,
)

STANDARD = DEFAULT_PROFILES[0]


def datasets() -> Path:
    env = os.environ.get("AIOPS_DATASETS")
    root = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
    return root


def nab_dev() -> Path:
    p = datasets() / "nab-dev"
    if not (p / "reference" / "scores.json").is_file():
        pytest.skip(f"NAB dev data not found at {p} (set AIOPS_DATASETS)")
    return p


def stamps(n: int) -> np.ndarray:
    return np.datetime64("2020-01-01T00:00:00") + np.arange(n) * np.timedelta64(300, "s")


def one_window_file(n: int = 1000, left: int = 500, right: int = 599):
    ts = stamps(n)
    return layout_file("f.csv", ts, [(ts[left], ts[right])])


def test_probationary_period() -> None:
    assert probationary_length(4032) == 604
    assert probationary_length(15853) == 750


def test_detection_at_window_start_is_worth_a_full_true_positive() -> None:
    lay = one_window_file()
    det = np.zeros(1000, bool)
    det[500] = True
    assert score_file(lay, det, STANDARD).score == pytest.approx(1.0, abs=1e-9)
    later = np.zeros(1000, bool)
    later[590] = True  # near the window's end: little credit
    assert 0.2 < score_file(lay, later, STANDARD).score < 0.3  # sig(-0.1)/sig(-1)
    both = det | later  # only the first detection in a window counts
    assert score_file(lay, both, STANDARD).score == pytest.approx(1.0, abs=1e-9)


def test_misses_false_positives_and_probation() -> None:
    lay = one_window_file()
    none = np.zeros(1000, bool)
    assert score_file(lay, none, STANDARD).score == -1.0
    fp = none.copy()
    fp[300] = True  # before any window: a full false positive
    assert score_file(lay, fp, STANDARD).score == pytest.approx(-1.0 - 0.11)
    early = none.copy()
    early[10] = True  # inside the probationary period: ignored
    assert score_file(lay, early, STANDARD).score == -1.0
    right_after = none.copy()
    right_after[601] = True  # just after a window: nearly free
    s = score_file(lay, right_after, STANDARD).score
    assert -1.0 - 0.11 < s < -1.0


def test_sweep_finds_the_best_threshold_like_a_brute_force_search() -> None:
    rng = np.random.default_rng(0)
    lays, scores = [], []
    for i in range(4):
        n = 800 + 100 * i
        ts = stamps(n)
        left = 300 + 50 * i
        lays.append(layout_file(f"f{i}.csv", ts, [(ts[left], ts[left + 60])]))
        s = np.round(rng.random(n) * 0.7, 2)
        s[left + 5 + i * 10] = 0.9 - 0.05 * i
        scores.append(s)
    thr, raw = sweep_threshold(lays, scores, STANDARD)
    brute = max(
        sum(score_file(lay, s >= t, STANDARD).score for lay, s in zip(lays, scores, strict=True))
        for t in np.unique(np.concatenate(scores))
    )
    assert raw == pytest.approx(brute)
    direct = sum(
        score_file(lay, s >= thr, STANDARD).score for lay, s in zip(lays, scores, strict=True)
    )
    assert direct == pytest.approx(raw)


def test_reproduces_numenta_reference_scores_per_file() -> None:
    root = nab_dev()
    ref = json.loads((root / "reference" / "scores.json").read_text())["numenta_raw"]
    corpus = load_corpus(root)
    total_windows = 0
    for prof in corpus.profiles:
        thr = ref["threshold"][prof.name]
        expected = {r["File"]: r for r in ref["per_file"][prof.name]}
        raw = 0.0
        total_windows = 0
        for f in corpus.files:
            cat, name = f.name.split("/")
            path = root / "reference" / "numenta" / cat / f"numenta_{name}"
            with path.open() as fh:
                s = np.array([float(r["anomaly_score"]) for r in csv.DictReader(fh)])
            lay = layout_file(f.name, f.timestamps, corpus.windows[f.name])
            got = score_file(lay, s >= thr, prof)
            want = expected[f.name]
            assert got.score == pytest.approx(want["Score"], abs=0.01), f.name
            assert (got.tp, got.tn, got.fp, got.fn) == (
                want["TP"],
                want["TN"],
                want["FP"],
                want["FN"],
            ), f.name
            raw += got.score
            total_windows += lay.n_windows
        published = {"standard": 74.64, "reward_low_FP_rate": 70.71, "reward_low_FN_rate": 77.96}
        assert normalise(raw, total_windows, prof) == pytest.approx(published[prof.name], abs=0.01)
    assert total_windows == 52
