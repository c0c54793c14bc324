"""Pure root-cause ranking over a metrics matrix, the call graph and recent changes."""

from aiops.rca.blame import score_edges
from aiops.rca.classify import Family, classify, family_of
from aiops.rca.edges import EdgeConfig, EdgeHealth, EdgeSeries, edge_health
from aiops.rca.models import (
    ChangeEvent,
    ChangeEvidence,
    ChangeKind,
    EdgeEvidence,
    MetricEvidence,
    MetricsMatrix,
    RcaInputError,
    RcaRanking,
    ServiceScore,
    metric_of,
    service_of,
)
from aiops.rca.onset import estimate_onset
from aiops.rca.rank import RankConfig, rank
from aiops.rca.report import describe_edge, summarise, to_hypotheses, to_hypothesis
from aiops.rca.scoring import ScoringConfig, score_metrics

__all__ = [
    "ChangeEvent",
    "ChangeEvidence",
    "ChangeKind",
    "EdgeConfig",
    "EdgeEvidence",
    "EdgeHealth",
    "EdgeSeries",
    "Family",
    "MetricEvidence",
    "MetricsMatrix",
    "RankConfig",
    "RcaInputError",
    "RcaRanking",
    "ScoringConfig",
    "ServiceScore",
    "classify",
    "describe_edge",
    "edge_health",
    "estimate_onset",
    "family_of",
    "metric_of",
    "rank",
    "score_edges",
    "score_metrics",
    "service_of",
    "summarise",
    "to_hypotheses",
    "to_hypothesis",
]
