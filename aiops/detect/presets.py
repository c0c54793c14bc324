"""Frozen detector settings and alarm thresholds shipped with the product.

Chosen on the development splits in ../shared/datasets (NAB dev, SMD dev) and then frozen; the
evaluation commands report scores with these values, never with values fitted on the data scored.
"""

from __future__ import annotations

import dataclasses

from aiops.detect.multivariate import MultivariateConfig
from aiops.detect.novelty import NoveltyConfig

#: Alarm threshold on NoveltyDetector scores (also starts the refractory period). Picked in the
#: middle of the plateau 0.33-0.38 where NAB dev standard stays within 72.7-73.4.
NOVELTY_THRESHOLD = 0.36

#: Univariate golden-signal detector; tuned on NAB dev (see README for the figures).
NOVELTY_CONFIG = NoveltyConfig(
    smooth_alpha=0.15,
    season_smooth_alpha=0.6,
    weights=(1.0, 1.0, 2.0, 0.0, 0.0),
    forget=1e-5,
    refractory=100,
    # Silent until 200 samples are known (NAB's probationary period is longer on every file,
    # so this does not change NAB figures); live passes should prime with recent history.
    warmup=200,
    alarm_threshold=NOVELTY_THRESHOLD,
)

#: The live detection pass's detector: the same, and an incident's values are forgotten once
#: the series is back within its earlier range (up to 2,000 samples after the alarm), so the
#: next incident on that series is news again.
LIVE_NOVELTY_CONFIG = dataclasses.replace(NOVELTY_CONFIG, recover=2000)

#: Seasonal period used by default: one day.
SEASON_SECONDS = 86_400

#: Multivariate detector for a group's metrics; tuned on SMD dev (see README for the figures).
MULTIVARIATE_CONFIG = MultivariateConfig()
