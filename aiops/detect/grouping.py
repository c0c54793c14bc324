"""Grouping anomalies into incidents, so a storm of anomalous series opens few incidents.

Anomalies of one pass are grouped by namespace: in a namespace the services call each other, so
a fault spreads along the call graph and shows in many series at once. The incident id derives
from the namespace alone, so the next passes' anomalies join the incident that is still open
(signal-with-start) instead of opening new ones.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from aiops.domain import Anomaly

NAMESPACE_LABELS = (
    "namespace",
    "destination_workload_namespace",
    "destination_service_namespace",
    "exported_namespace",
)
CLUSTER_SCOPE = "_cluster"  # node-level series have no namespace


@dataclass(frozen=True)
class AnomalyGroup:
    incident_id: str
    fingerprint: str
    namespace: str | None
    service: str | None
    anomalies: list[Anomaly]


def namespace_of(anomaly: Anomaly) -> str | None:
    for label in NAMESPACE_LABELS:
        if anomaly.series.get(label):
            return anomaly.series[label]
    return None


def group_anomalies(anomalies: list[Anomaly]) -> list[AnomalyGroup]:
    by_scope: dict[str, list[Anomaly]] = defaultdict(list)
    for anomaly in anomalies:
        by_scope[namespace_of(anomaly) or CLUSTER_SCOPE].append(anomaly)
    groups = []
    for scope, members in sorted(by_scope.items()):
        members.sort(key=lambda a: (-a.score, a.start))
        fingerprint = hashlib.sha256(f"scope:{scope}".encode()).hexdigest()[:16]
        groups.append(
            AnomalyGroup(
                incident_id=f"incident-{fingerprint}",
                fingerprint=fingerprint,
                namespace=None if scope == CLUSTER_SCOPE else scope,
                service=members[0].entity,
                anomalies=members,
            )
        )
    return groups
