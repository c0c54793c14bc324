"""Readers for evaluation datasets that fail loudly, naming the file and the line at fault.

A benchmark that silently skips a bad row reports a score for data it never saw, so every
reader here either returns exactly what the file holds or raises DatasetError.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message says where and how to fix it."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(path, f"missing {what}; check --data points at the dataset folder")
    return path


def open_text(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without newline) of a .txt or .txt.gz file."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                for i, line in enumerate(fh, 1):
                    yield i, line.rstrip("\r\n")
        else:
            with path.open(encoding="utf-8") as fh:
                for i, line in enumerate(fh, 1):
                    yield i, line.rstrip("\r\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot read file ({exc})") from exc


def read_matrix(path: Path, n_cols: int | None = None) -> npt.NDArray[np.float64]:
    """Read a comma-separated float matrix (no header); every row must have the same width."""
    require_file(path, "data file")
    try:
        # Fast path; on any problem re-read line by line to say exactly where it is.
        fast = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
        if fast.size and (n_cols is None or fast.shape[1] == n_cols):
            return fast
    except (ValueError, OSError, EOFError, UnicodeDecodeError):
        pass
    return _read_matrix_slow(path, n_cols)


def _read_matrix_slow(path: Path, n_cols: int | None) -> npt.NDArray[np.float64]:
    rows: list[list[float]] = []
    width = n_cols
    for lineno, line in open_text(path):
        if not line.strip():
            continue
        parts = line.split(",")
        if width is None:
            width = len(parts)
        if len(parts) != width:
            raise DatasetError(
                path, f"expected {width} comma-separated values, got {len(parts)}", lineno
            )
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            bad = next(p for p in parts if not _is_float(p))
            raise DatasetError(path, f"not a number: {bad!r}", lineno) from None
    if not rows:
        raise DatasetError(path, "file is empty")
    return np.asarray(rows, dtype=np.float64)


def read_labels(path: Path) -> npt.NDArray[np.int8]:
    """Read one 0/1 label per line."""
    require_file(path, "label file")
    out: list[int] = []
    for lineno, line in open_text(path):
        s = line.strip()
        if not s:
            continue
        try:
            v = int(float(s))
        except ValueError:
            raise DatasetError(path, f"label must be 0 or 1, got {s!r}", lineno) from None
        if v not in (0, 1):
            raise DatasetError(path, f"label must be 0 or 1, got {s!r}", lineno)
        out.append(v)
    if not out:
        raise DatasetError(path, "file is empty")
    return np.asarray(out, dtype=np.int8)


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
