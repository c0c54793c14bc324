"""Metrics for multivariate detection: point-wise P/R/F1, point-adjusted F1, AUPRC, HitRate."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aiops_lab.eval.smd_io import Segment

FloatArray = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int8]


def prf(pred: npt.NDArray[np.bool_], labels: Labels) -> tuple[float, float, float]:
    lab = labels.astype(bool)
    tp = int(np.sum(pred & lab))
    fp = int(np.sum(pred & ~lab))
    fn = int(np.sum(~pred & lab))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def point_adjust(pred: npt.NDArray[np.bool_], labels: Labels) -> npt.NDArray[np.bool_]:
    """OmniAnomaly's adjust_predicts: a hit anywhere in a labelled run marks the whole run."""
    out = pred.copy()
    lab = labels.astype(bool)
    edges = np.flatnonzero(np.diff(np.r_[0, lab.astype(np.int8), 0]))
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if out[start:end].any():
            out[start:end] = True
    return out


def best_f1(scores: FloatArray, labels: Labels) -> tuple[float, float]:
    """Oracle: the F1 of the best threshold searched on the labels (for reference only)."""
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    lab = labels[order].astype(np.float64)
    tp = np.cumsum(lab)
    fp = np.cumsum(1 - lab)
    last = np.r_[s[1:] != s[:-1], True]
    f1 = np.where(last, 2 * tp / (tp + fp + lab.sum()), 0.0)
    i = int(np.argmax(f1))
    return float(f1[i]), float(s[i])


def auprc(scores: FloatArray, labels: Labels) -> float:
    """Average precision (step-wise, ties grouped)."""
    pos = float(np.sum(labels))
    if pos == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    lab = labels[order].astype(np.float64)
    tp = np.cumsum(lab)
    fp = np.cumsum(1 - lab)
    last = np.r_[s[1:] != s[:-1], True]
    tp, fp = tp[last], fp[last]
    prec = tp / (tp + fp)
    rec = tp / pos
    return float(np.sum(np.diff(np.r_[0.0, rec]) * prec))


def hit_rate(blame: FloatArray, segments: list[Segment], percent: float) -> float:
    """Mean over segments of |top-⌊P/100·|G|⌋ dimensions ∩ G| / |G| (dims ranked by mean blame)."""
    if not segments:
        return float("nan")
    hits = []
    for seg in segments:
        contrib = np.nan_to_num(blame[seg.start : seg.end].mean(axis=0))
        k = int(np.floor(percent / 100.0 * len(seg.dims)))
        top = np.argsort(-contrib, kind="stable")[:k]
        hits.append(len(set(top.tolist()) & set(seg.dims)) / len(seg.dims))
    return float(np.mean(hits))


def random_hit_rate(segments: list[Segment], n_dims: int, percent: float) -> float:
    """Expected HitRate of a uniformly random ranking: ⌊P/100·|G|⌋ / n_dims per segment."""
    if not segments:
        return float("nan")
    return float(
        np.mean(
            [min(int(np.floor(percent / 100.0 * len(s.dims))), n_dims) / n_dims for s in segments]
        )
    )
