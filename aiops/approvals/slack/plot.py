"""A small PNG line chart of the anomalous series, for the approval thread (pure: numpy + zlib).

No plotting library is a dependency, and a sparkline with the anomaly's start marked is all an
approver needs at a glance; labels go into the Slack file title, not the image.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

_BACKGROUND = (255, 255, 255)
_FRAME = (200, 200, 200)
_MARK = (220, 50, 47)
_LINES = [(38, 139, 210), (133, 153, 0), (211, 54, 130), (108, 113, 196), (42, 161, 152)]


def render_png(
    series: Sequence[tuple[Sequence[float], Sequence[float]]],
    *,
    mark_at: float | None = None,
    width: int = 640,
    height: int = 220,
) -> bytes:
    """Each series is (timestamps, values); NaNs break the line. `mark_at` draws a red vertical
    line (the anomaly's start). Raises ValueError when there is nothing to draw."""
    points = [(np.asarray(t, dtype=float), np.asarray(v, dtype=float)) for t, v in series]
    points = [(t, v) for t, v in points if t.size and np.isfinite(v).any()]
    if not points:
        raise ValueError("no finite values to plot")
    t_all = np.concatenate([t for t, _ in points])
    v_all = np.concatenate([v[np.isfinite(v)] for _, v in points])
    t0, t1 = float(t_all.min()), float(t_all.max())
    v0, v1 = float(v_all.min()), float(v_all.max())
    if t1 == t0:
        t1 = t0 + 1.0
    pad = (v1 - v0) * 0.08 or max(abs(v0) * 0.1, 1.0)
    v0, v1 = v0 - pad, v1 + pad
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = _BACKGROUND
    left, right, top, bottom = 8, width - 9, 8, height - 9
    img[top, left : right + 1] = img[bottom, left : right + 1] = _FRAME
    img[top : bottom + 1, left] = img[top : bottom + 1, right] = _FRAME

    def x_of(t: float) -> int:
        return round(left + (t - t0) / (t1 - t0) * (right - left))

    def y_of(v: float) -> int:
        return round(bottom - (v - v0) / (v1 - v0) * (bottom - top))

    if mark_at is not None and t0 <= mark_at <= t1:
        img[top : bottom + 1, x_of(mark_at)] = _MARK
    for index, (t, v) in enumerate(points):
        colour = _LINES[index % len(_LINES)]
        previous: tuple[int, int] | None = None
        for ti, vi in zip(t.tolist(), v.tolist(), strict=True):
            if not math.isfinite(vi):
                previous = None
                continue
            here = (x_of(ti), y_of(vi))
            _line(img, previous or here, here, colour)
            previous = here
    return _encode(img)


def _line(
    img: NDArray[np.uint8], a: tuple[int, int], b: tuple[int, int], colour: tuple[int, int, int]
) -> None:
    steps = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)
    xs = np.rint(np.linspace(a[0], b[0], steps + 1)).astype(int)
    ys = np.rint(np.linspace(a[1], b[1], steps + 1)).astype(int)
    for dy in (0, 1):  # two pixels thick, readable when Slack scales the preview down
        img[np.clip(ys + dy, 0, img.shape[0] - 1), xs] = colour


def _encode(img: NDArray[np.uint8]) -> bytes:
    height, width, _ = img.shape
    raw = b"".join(b"\x00" + img[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
