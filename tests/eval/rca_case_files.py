"""Writes small RCAEval-layout cases for the eval tests (imported by them; not a test module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

INJECT = 1_700_001_800


def write_case(
    root: Path, folder: str, rep: str = "1", *, culprit: str | None = None, seed: int = 0
) -> Path:
    """A small healthy 3-service case whose `culprit` (default: the folder's service) burns CPU."""
    service = folder.split("_", 1)[0]
    culprit = culprit or service
    rng = np.random.default_rng(seed)
    times = INJECT - 1800 + 60 * np.arange(40)
    cols = [f"{s}_{m}" for s in ("alpha", "beta", "gamma") for m in ("cpu", "lat_90")]
    data = 10 + 0.2 * rng.standard_normal((40, len(cols)))
    j = cols.index(f"{culprit}_cpu")
    data[30:34, j] *= 8
    d = root / folder / rep
    d.mkdir(parents=True)
    lines = ["time," + ",".join(cols)]
    lines += [
        f"{int(t)}," + ",".join(f"{v:.4f}" for v in row)
        for t, row in zip(times, data, strict=False)
    ]
    (d / "metrics.csv").write_text("\n".join(lines) + "\n")
    (d / "inject_time.txt").write_text(f"{INJECT}\n")
    return d
