"""Read a NAB corpus laid out as NAB ships it (data/, labels/, config/)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aiops_lab.eval.datasets_io import DatasetError, require_file
from aiops_lab.eval.nab_scoring import DEFAULT_PROFILES, Profile


@dataclass
class NabFile:
    name: str  # "<category>/<file>.csv", the key used by the label files
    path: Path
    timestamps: npt.NDArray[np.datetime64]
    values: npt.NDArray[np.float64]


def parse_time(text: str) -> np.datetime64:
    return np.datetime64(text.strip().replace(" ", "T"), "s")


def read_nab_csv(path: Path, name: str) -> NabFile:
    require_file(path, "NAB data file")
    ts: list[np.datetime64] = []
    vals: list[float] = []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DatasetError(path, "file is empty; expected a 'timestamp,value' header", 1)
            cols = [h.strip() for h in header]
            if "timestamp" not in cols or "value" not in cols:
                raise DatasetError(
                    path, f"header must name 'timestamp' and 'value', got {header}", 1
                )
            ti, vi = cols.index("timestamp"), cols.index("value")
            for lineno, row in enumerate(reader, 2):
                if not row:
                    continue
                if len(row) <= max(ti, vi):
                    raise DatasetError(path, f"expected {len(cols)} fields, got {len(row)}", lineno)
                try:
                    ts.append(parse_time(row[ti]))
                except ValueError:
                    raise DatasetError(
                        path, f"bad timestamp {row[ti]!r}; expected 'YYYY-MM-DD HH:MM:SS'", lineno
                    ) from None
                try:
                    vals.append(float(row[vi]))
                except ValueError:
                    raise DatasetError(
                        path, f"value is not a number: {row[vi]!r}", lineno
                    ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(path, f"cannot read file ({exc})") from exc
    if not vals:
        raise DatasetError(path, "no data rows")
    return NabFile(name, path, np.asarray(ts, dtype="datetime64[s]"), np.asarray(vals))


def read_windows(path: Path) -> dict[str, list[tuple[np.datetime64, np.datetime64]]]:
    require_file(path, "NAB windows file (labels/combined_windows.json)")
    text = path.read_text(encoding="utf-8")
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(path, f"invalid JSON: {exc.msg}", exc.lineno) from None
    if not isinstance(raw, dict):
        raise DatasetError(path, 'expected an object {"<category>/<file>.csv": [[start, end]]}')
    out: dict[str, list[tuple[np.datetime64, np.datetime64]]] = {}
    for key, wins in raw.items():
        line = _line_of(text, key)
        if not isinstance(wins, list):
            raise DatasetError(path, f"windows of {key!r} must be a list of [start, end]", line)
        parsed = []
        for w in wins:
            if not (isinstance(w, list) and len(w) == 2 and all(isinstance(x, str) for x in w)):
                raise DatasetError(path, f"window {w!r} of {key!r} must be [start, end]", line)
            try:
                start, end = parse_time(w[0]), parse_time(w[1])
            except ValueError:
                raise DatasetError(
                    path, f"bad timestamp in window {w!r} of {key!r}", line
                ) from None
            if end < start:
                raise DatasetError(path, f"window {w!r} of {key!r} ends before it starts", line)
            parsed.append((start, end))
        out[key] = parsed
    return out


def read_profiles(path: Path) -> tuple[Profile, ...]:
    if not path.is_file():
        return DEFAULT_PROFILES
    text = path.read_text(encoding="utf-8")
    try:
        raw: Any = json.loads(text)
        return tuple(
            Profile(
                name,
                float(p["CostMatrix"]["tpWeight"]),
                float(p["CostMatrix"]["fpWeight"]),
                float(p["CostMatrix"]["fnWeight"]),
            )
            for name, p in raw.items()
        )
    except json.JSONDecodeError as exc:
        raise DatasetError(path, f"invalid JSON: {exc.msg}", exc.lineno) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DatasetError(
            path, f"each profile needs CostMatrix.tpWeight/fpWeight/fnWeight ({exc!r})"
        ) from None


def _line_of(text: str, key: str) -> int | None:
    pos = text.find(json.dumps(key))
    return text.count("\n", 0, pos) + 1 if pos >= 0 else None


@dataclass
class NabCorpus:
    root: Path
    files: list[NabFile]
    windows: dict[str, list[tuple[np.datetime64, np.datetime64]]]
    profiles: tuple[Profile, ...]


def load_corpus(root: Path, windows_file: Path | None = None) -> NabCorpus:
    data = root / "data"
    if not data.is_dir():
        raise DatasetError(data, "missing NAB data folder; expected data/<category>/<file>.csv")
    wpath = windows_file or root / "labels" / "combined_windows.json"
    windows = read_windows(wpath)
    files = []
    for key in sorted(windows):
        files.append(read_nab_csv(data / key, key))
    on_disk = {p.relative_to(data).as_posix() for p in data.glob("*/*.csv")}
    unlabelled = sorted(on_disk - set(windows))
    if unlabelled:
        raise DatasetError(
            wpath,
            f"no windows entry for {unlabelled[0]} (and "
            f"{len(unlabelled) - 1} more); add it, with [] if it has no anomaly",
        )
    return NabCorpus(root, files, windows, read_profiles(root / "config" / "profiles.json"))
