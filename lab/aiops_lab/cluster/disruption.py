"""The disruption controller: PodDisruptionBudget status (healthy, desired, allowed)."""

from __future__ import annotations

from aiops_lab.cluster.deployment import int_or_percent
from aiops_lab.cluster.objects import (
    Obj,
    condition,
    is_terminating,
    merge_conditions,
    pod_ready,
    rfc3339,
)
from aiops_lab.cluster.selectors import selector_to_matcher
from aiops_lab.cluster.state import State


def pdb_numbers(state: State, pdb: Obj) -> tuple[int, int, int]:
    """(expected pods, desired healthy, current healthy) as the disruption controller counts."""
    ns = pdb["metadata"]["namespace"]
    match = selector_to_matcher(pdb.get("spec", {}).get("selector"))
    pods = [
        p
        for p in state.store.items("pods", ns)
        if not is_terminating(p) and match(p["metadata"].get("labels") or {})
    ]
    expected = 0
    matched_controller = False
    for d in state.store.items("deployments", ns):
        tmpl_labels = d["spec"]["template"].get("metadata", {}).get("labels") or {}
        if match(tmpl_labels):
            expected += int(d["spec"].get("replicas", 1))
            matched_controller = True
    if not matched_controller:
        expected = len(pods)
    healthy = sum(1 for p in pods if pod_ready(p))
    spec = pdb.get("spec", {})
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - int_or_percent(spec["maxUnavailable"], expected, round_up=True))
    else:
        desired = int_or_percent(spec.get("minAvailable", 1), expected, round_up=True)
    return expected, desired, healthy


def sync_disruption_budgets(state: State, now: float) -> bool:
    changed = False
    for pdb in state.store.items("poddisruptionbudgets"):
        expected, desired, healthy = pdb_numbers(state, pdb)
        allowed = max(0, healthy - desired)
        at = rfc3339(now)
        cond = condition(
            "DisruptionAllowed",
            allowed > 0,
            "SufficientPods" if allowed > 0 else "InsufficientPods",
            "" if allowed > 0 else f"{healthy} healthy pods, {desired} needed",
            at,
        )
        cond["observedGeneration"] = pdb["metadata"].get("generation", 1)
        old = pdb.get("status") or {}
        status: Obj = {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": merge_conditions(old.get("conditions"), [cond]),
        }
        if status != old:
            pdb["status"] = status
            state.store.touch(pdb)
            changed = True
    return changed
