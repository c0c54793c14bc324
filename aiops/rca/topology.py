"""Random walk with restart on the call graph (MicroRCA / MonitorRank style).

Anomalies propagate from a faulty callee up to its callers (a slow database makes every caller
slow), so a walker that starts at anomalous services and prefers to move towards anomalous
*callees* ends up, in the long run, at the deepest anomalous service: the likely origin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def random_walk_scores(
    services: list[str],
    edges: Iterable[tuple[str, str]],
    anomaly: Mapping[str, float],
    *,
    backward: float = 0.2,
    restart: float = 0.15,
    iterations: int = 100,
) -> dict[str, float]:
    """Visit frequency per service (sums to 1), or an empty dict when there is no usable edge.

    `edges` are caller → callee. `anomaly` is a non-negative score per service. `backward` is the
    relative weight of moving from a callee back to a caller (lets the walk leave dead ends).
    """
    index = {s: i for i, s in enumerate(services)}
    n = len(services)
    weights = np.zeros((n, n))
    a = np.array([max(float(anomaly.get(s, 0.0)), 0.0) for s in services]) + 1e-9
    usable = False
    for caller, callee in edges:
        if caller not in index or callee not in index or caller == callee:
            continue
        i, j = index[caller], index[callee]
        weights[i, j] += a[j]
        weights[j, i] += backward * a[i]
        usable = True
    if not usable:
        return {}
    # Staying put is allowed in proportion to the service's own anomaly, so an anomalous leaf
    # (the usual root cause) keeps the walker.
    weights[np.arange(n), np.arange(n)] += a
    rows = weights.sum(axis=1, keepdims=True)
    transition = weights / np.where(rows > 0, rows, 1.0)
    pref = a / a.sum()
    p = pref.copy()
    for _ in range(iterations):
        nxt = (1 - restart) * (p @ transition) + restart * pref
        if np.abs(nxt - p).sum() < 1e-10:
            p = nxt
            break
        p = nxt
    return {s: float(p[index[s]]) for s in services}
