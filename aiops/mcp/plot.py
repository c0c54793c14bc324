"""A small PNG line chart without a plotting library: series as coloured lines, the anomaly
window shaded, a light grid. No text is drawn (no font here); the tool sends the axes' ranges
as text next to the image."""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

RGB = tuple[int, int, int]
PALETTE: tuple[RGB, ...] = (
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (148, 103, 189),
    (255, 127, 14),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
)
SHADE: RGB = (255, 228, 196)
GRID: RGB = (225, 225, 225)
AXIS: RGB = (60, 60, 60)
MARGIN = 20


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(b"\xff" * (width * height * 3))

    def put(self, x: int, y: int, color: RGB) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i : i + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: RGB) -> None:
        for y in range(max(0, y0), min(self.height, y1 + 1)):
            for x in range(max(0, x0), min(self.width, x1 + 1)):
                self.put(x, y, color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: RGB, thick: int = 1) -> None:
        # Bresenham; thickness by drawing neighbours.
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            for t in range(thick):
                self.put(x0, y0 + t, color)
            if x0 == x1 and y0 == y1:
                break
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def png(self) -> bytes:
        rows = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3])
            for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (
                struct.pack(">I", len(data))
                + kind
                + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
            )

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 6))
            + chunk(b"IEND", b"")
        )


def line_chart(
    series: Sequence[tuple[Sequence[float], Sequence[float]]],
    t_range: tuple[float, float],
    shade: tuple[float, float] | None = None,
    *,
    width: int = 640,
    height: int = 320,
) -> tuple[bytes, tuple[float, float]]:
    """PNG bytes and the (min, max) of the y axis. `series` holds (timestamps, values)."""
    t0, t1 = t_range
    finite = [v for _, vs in series for v in vs if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad
    c = Canvas(width, height)
    left, right, top, bottom = MARGIN, width - MARGIN, MARGIN, height - MARGIN
    span = max(t1 - t0, 1e-9)

    def px(t: float) -> int:
        return left + round((t - t0) / span * (right - left))

    def py(v: float) -> int:
        return bottom - round((v - lo) / (hi - lo) * (bottom - top))

    if shade is not None:
        a, b = max(shade[0], t0), min(shade[1], t1)
        if b >= a:
            c.rect(px(a), top, max(px(b), px(a) + 1), bottom, SHADE)
    for i in range(1, 5):
        y = top + i * (bottom - top) // 5
        c.line(left, y, right, y, GRID)
        x = left + i * (right - left) // 5
        c.line(x, top, x, bottom, GRID)
    c.line(left, bottom, right, bottom, AXIS)
    c.line(left, top, left, bottom, AXIS)
    for n, (ts, vs) in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        prev: tuple[int, int] | None = None
        for t, v in zip(ts, vs, strict=False):
            if not math.isfinite(v):
                prev = None  # a gap in the data stays a gap in the line
                continue
            point = (px(t), py(v))
            if prev is not None:
                c.line(prev[0], prev[1], point[0], point[1], color, thick=2)
            else:
                c.rect(point[0], point[1], point[0] + 1, point[1] + 1, color)
            prev = point
    return c.png(), (lo + pad, hi - pad)
