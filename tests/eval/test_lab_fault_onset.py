"""Time to detect counts from the first injection of the scenario's fault, not from the end of
the warmup: a fault scheduled `at` seconds after the warmup starts then."""

from __future__ import annotations

from aiops_lab.eval.lab_eval import fault_time
from aiops_lab.eval.lab_scoring import ScenarioRecord, SeenIncident, score
from aiops_lab.scenario import parse_scenario

SCENARIO = """
name: late-rollout
warmup: 30s
duration: 200s
traffic: {rps: 50}
faults:
  - {at: 40s, kind: bad_rollout, target: checkoutservice}
  - {at: 70s, kind: bad_rollout, target: checkoutservice}
noise:
  - {at: 5s, kind: benign_rollout, target: adservice}
expect: {root_cause: checkoutservice, fault: bad_rollout, playbook: rollback-deployment}
"""
CONTROL = """
name: quiet
duration: 60s
traffic: {rps: 50}
noise:
  - {at: 20s, kind: benign_rollout, target: adservice}
expect: {root_cause: none, fault: none, playbook: none}
"""
WARMUP_END = 1_800_000_030.0


def _record(started: float, fault_at: float | None) -> ScenarioRecord:
    incident = SeenIncident("incident-x", "r1", started, ("checkoutservice",), None)
    return ScenarioRecord(
        name="late-rollout",
        root_cause="checkoutservice",
        fault="bad_rollout",
        expected_playbook="rollback-deployment",
        played_at=WARMUP_END - 30,
        fault_at=fault_at,
        ended_at=WARMUP_END + 170,
        incidents=[incident],
        health=[],
        changes=[],
        playbook_actions={},
    )


def test_the_fault_starts_at_its_first_injection_after_the_warmup() -> None:
    s = parse_scenario(SCENARIO)
    assert s.fault_onset == 40.0
    assert fault_time(s, WARMUP_END) == WARMUP_END + 40
    assert fault_time(parse_scenario(CONTROL), WARMUP_END) is None


def test_detection_counts_from_the_fault_and_earlier_incidents_are_false() -> None:
    fault_at = fault_time(parse_scenario(SCENARIO), WARMUP_END)
    late = score(_record(WARMUP_END + 46, fault_at))
    assert late.detected and late.mttd_s == 6.0  # not 46 s from the warmup's end
    early = score(_record(WARMUP_END + 20, fault_at))  # after the warmup, before the fault
    assert early.detected is False and len(early.false_incidents) == 1
