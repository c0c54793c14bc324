"""Incidents the reliability tests open: a root cause on the anomaly's labels (which
tests/reliability/worker_main.py's investigator reads), one shipped playbook each, under a
policy that lets every action run without a human."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiops.activities.contracts import RulesSnapshot
from aiops.domain import Anomaly, Direction, Incident
from aiops.playbooks.loader import PlaybookSet
from aiops.playbooks.models import VerificationSpec
from aiops.policy.loader import parse_policy
from tests.incident_fixtures import NS

POLICY = f"""
allow:
  - name: shop
    namespaces: [{NS}]
    actions: [k8s.rollout_restart, k8s.scale, k8s.rollout_undo, k8s.delete_pod]
  - {{name: nodes, actions: [k8s.cordon, k8s.drain]}}
budgets: {{per_namespace_per_hour: 50, per_cluster_per_hour: 100, cooldown_per_target: 1s}}
"""

# Verification that holds at once (resolved right after the steps), or never (compensated).
HOLDS = VerificationSpec(query="vector(1)", hold_for=0.001, timeout=30)
NEVER = VerificationSpec(query="absent(vector(1))", hold_for=0.5, timeout=1)


def incident(target: str, fault: str, *, node: bool = False) -> Incident:
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    return Incident(
        id=f"incident-{target}-{uuid.uuid4().hex[:6]}",
        fingerprint=uuid.uuid4().hex[:16],
        namespace=NS,
        service=None if node else target,
        opened_at=at,
        anomalies=[
            Anomaly(
                signal="test",
                series={"node" if node else "workload": target, "fault": fault},
                query="test",
                start=at,
                score=1.0,
                direction=Direction.UP,
            )
        ],
    )


def only(
    rules: RulesSnapshot,
    playbook: str,
    verification: VerificationSpec = HOLDS,
    *,
    preconditions: bool = True,
) -> RulesSnapshot:
    """One shipped playbook, with `verification` instead of its own (and without its
    preconditions unless `preconditions`), under POLICY."""
    book = rules.playbooks.playbooks[playbook]
    update: dict[str, object] = {"verification": verification}
    if not preconditions:
        update["preconditions"] = []
    return RulesSnapshot(
        policy=parse_policy(POLICY, "reliability.yaml"),
        playbooks=PlaybookSet(playbooks={playbook: book.model_copy(update=update)}),
    )
