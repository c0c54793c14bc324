"""The reference chart: fixed data a person looked at once (reference.png beside this file)."""

from __future__ import annotations

import math

from aiops.charts import Line, line_chart

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
STEP = 15.0


def reference_png() -> bytes:
    n = 240  # an hour at 15 s
    ts = [T0 + i * STEP for i in range(n)]
    lines = []
    for pod, base in (("cartservice-7d9c8-abcde", 0.004), ("cartservice-7d9c8-fghij", 0.006)):
        values = []
        for i in range(n):
            v = base + 0.002 * math.sin(i / 9.0)
            if i >= 150:  # the bad rollout: errors jump
                v += 0.09 + 0.01 * math.sin(i / 3.0)
            values.append(math.nan if 100 <= i < 104 else v)  # a scrape gap stays a gap
        lines.append(Line({"namespace": "boutique", "pod": pod}, ts, values))
    return line_chart(
        lines,
        title="error_ratio of cartservice (incident-3f2a9c8b7d6e5f40)",
        unit="error ratio (0-1)",
        shade=(T0 + 150 * STEP, T0 + 200 * STEP),
        mark_at=T0 + 150 * STEP,
        x_range=(ts[0], ts[-1]),
    )
