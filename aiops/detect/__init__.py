"""Pure anomaly detectors over numpy arrays and the signal catalog (imports only aiops.domain)."""

from aiops.detect.catalog import BUILTIN_SIGNALS, Signal, SignalCatalog, build_catalog
from aiops.detect.multivariate import MultivariateConfig, MultivariateDetector
from aiops.detect.novelty import NoveltyConfig, NoveltyDetector, NoveltyState
from aiops.detect.presets import (
    MULTIVARIATE_CONFIG,
    NOVELTY_CONFIG,
    NOVELTY_THRESHOLD,
)
from aiops.detect.tracker import SignalTracker

__all__ = [
    "BUILTIN_SIGNALS",
    "MULTIVARIATE_CONFIG",
    "NOVELTY_CONFIG",
    "NOVELTY_THRESHOLD",
    "MultivariateConfig",
    "MultivariateDetector",
    "NoveltyConfig",
    "NoveltyDetector",
    "NoveltyState",
    "Signal",
    "SignalCatalog",
    "SignalTracker",
    "build_catalog",
]
