"""A multivariate detector's alarm threshold, re-calibrated on its own recent quiet scores.

The threshold is a margin over a high quantile of a calibration set (floored). The set starts as
the detector's scores on its last training rows and then slides over the scores it gives live,
so it says what is normal for the group now. (The multivariate detector holds the lower of this
and its training threshold: a group quieter now than in its training stretch, which held
incidents and restless days, gets a lower bar; see aiops.detect.multivariate.) A score at or past
the threshold never joins the set, nor does any score in the `guard` rows after one: while the
group alarms, and for a while after (an incident's score flickers around the bar, and its rows
just under it are the incident still), the calibration is frozen, so an incident, however long,
is not learnt as normal.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable


class RollingCalibration:
    """max(floor, margin x quantile) of the last `window` quiet scores (under the bar, and not
    within `guard` rows after a score that was not)."""

    def __init__(
        self,
        initial: Iterable[float],
        window: int,
        quantile: float,
        margin: float,
        floor: float,
        guard: int = 0,
    ) -> None:
        if window < 1:
            raise ValueError(f"calibration window must be at least 1 score, got {window}")
        if not 0.0 <= quantile <= 1.0:
            raise ValueError(f"calibration quantile must be within [0, 1], got {quantile}")
        if guard < 0:
            raise ValueError(f"calibration guard must be 0 or more rows, got {guard}")
        self._window = window
        self._quantile = quantile
        self._margin = margin
        self._floor = floor
        self._guard = guard
        self._since_alarm = guard  # rows since the last score at or past the bar
        # Arrival order (to drop the oldest) beside a sorted copy (for the quantile): with a
        # few thousand scores, bisect's insert and delete move a few kilobytes, microseconds.
        self._fifo: deque[float] = deque()
        self._sorted: list[float] = []
        for score in list(initial)[-window:]:
            if math.isfinite(score):
                self._add(score)
        self.threshold = self._compute()

    def observe(self, score: float, bar: float | None = None) -> None:
        """Take a score the detector just gave, judged by `bar` (by default this threshold);
        only a quiet one is learnt."""
        if not math.isfinite(score):
            return
        if score >= (self.threshold if bar is None else bar):
            self._since_alarm = 0
            return
        if self._since_alarm < self._guard:
            self._since_alarm += 1
            return
        self._add(score)
        self.threshold = self._compute()

    def _add(self, score: float) -> None:
        if len(self._fifo) == self._window:
            oldest = self._fifo.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
        self._fifo.append(score)
        bisect.insort(self._sorted, score)

    def _compute(self) -> float:
        if not self._sorted:
            return self._floor
        # numpy's default ("linear") quantile, so the first threshold equals the training rule's
        pos = self._quantile * (len(self._sorted) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(self._sorted) - 1)
        value = self._sorted[lo] + (self._sorted[hi] - self._sorted[lo]) * (pos - lo)
        return max(self._floor, self._margin * value)
