"""Read an SMD/ASD-style multivariate corpus (train/, test/, test_label/, interpretation_label/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aiops_lab.eval.datasets_io import DatasetError, open_text, read_labels, read_matrix


@dataclass
class Segment:
    start: int  # first test row, 0-based, inclusive
    end: int  # exclusive
    dims: list[int]  # 0-based dimensions


@dataclass
class Entity:
    name: str
    train: npt.NDArray[np.float64]
    test: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int8]
    segments: list[Segment]


def _data_file(folder: Path, name: str) -> Path:
    for suffix in (".txt", ".txt.gz"):
        p = folder / f"{name}{suffix}"
        if p.is_file():
            return p
    raise DatasetError(folder / f"{name}.txt", f"missing file (also looked for {name}.txt.gz)")


def entity_names(root: Path) -> list[str]:
    train = root / "train"
    if not train.is_dir():
        raise DatasetError(
            train,
            "missing folder; expected train/, test/, test_label/ and "
            "interpretation_label/ under --data",
        )
    names = sorted(
        {
            p.name.removesuffix(".gz").removesuffix(".txt")
            for p in train.iterdir()
            if p.name.endswith((".txt", ".txt.gz"))
        }
    )
    if not names:
        raise DatasetError(train, "no <entity>.txt or <entity>.txt.gz files")
    return names


def read_segments(path: Path, n_dims: int, n_rows: int, inclusive_end: bool) -> list[Segment]:
    segs: list[Segment] = []
    for lineno, line in open_text(path):
        s = line.strip()
        if not s:
            continue
        try:
            rng, dims = s.split(":")
            a, b = rng.split("-")
            start, end = int(a), int(b) + (1 if inclusive_end else 0)
            dd = [int(d) - 1 for d in dims.split(",") if d.strip()]
        except ValueError:
            raise DatasetError(path, f"expected 'start-end:d1,d2,...', got {s!r}", lineno) from None
        if not (0 <= start < end <= n_rows):
            raise DatasetError(path, f"range {rng} outside the {n_rows} test rows", lineno)
        if not dd or min(dd) < 0 or max(dd) >= n_dims:
            raise DatasetError(path, f"dimensions must be 1..{n_dims}, got {dims!r}", lineno)
        segs.append(Segment(start, end, dd))
    return segs


def load_entity(root: Path, name: str, inclusive_end: bool) -> Entity:
    train = read_matrix(_data_file(root / "train", name))
    test_path = _data_file(root / "test", name)
    test = read_matrix(test_path)
    if test.shape[1] != train.shape[1]:
        raise DatasetError(test_path, f"has {test.shape[1]} columns but train has {train.shape[1]}")
    label_path = _data_file(root / "test_label", name)
    labels = read_labels(label_path)
    if len(labels) != len(test):
        raise DatasetError(
            label_path,
            f"has {len(labels)} labels for {len(test)} test rows; "
            "there must be one label per test row",
        )
    interp = _data_file(root / "interpretation_label", name)
    segs = read_segments(interp, train.shape[1], len(test), inclusive_end)
    return Entity(name, train, test, labels, segs)


def ranges_are_inclusive(root: Path) -> bool:
    """ASD (which ships anomaly_type.txt) writes inclusive ranges; SMD writes end-exclusive."""
    return (root / "anomaly_type.txt").is_file()
