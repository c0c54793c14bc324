"""Scenario files: the shipped set is complete and valid; bad files are refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiops_lab.scenario import (
    SCENARIO_DIR,
    ScenarioError,
    load_all,
    load_scenario,
    parse_duration,
)
from aiops_lab.sim.faults import EXPECTED_PLAYBOOK, FaultKind

GOOD = """\
name: cart-memory-leak
seed: 42
warmup: 90s
duration: 300s
traffic: {rps: 50, pattern: steady}
faults:
  - {at: 0s, kind: memory_leak, target: cartservice, severity: medium}
noise:
  - {at: 20s, kind: benign_rollout, target: adservice}
expect:
  root_cause: cartservice
  fault: memory_leak
  playbook: restart-deployment
"""


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_the_issue_example_loads_with_seconds(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, GOOD))
    assert (s.warmup, s.duration) == (90.0, 300.0)
    assert s.faults[0].kind is FaultKind.MEMORY_LEAK
    assert s.faults[0].to_fault().target == "cartservice"
    assert s.noise[0].target == "adservice"


def test_shipped_scenarios_cover_every_fault_and_two_controls() -> None:
    scenarios = load_all(SCENARIO_DIR)
    kinds = {f.kind for s in scenarios.values() for f in s.faults}
    assert kinds == set(FaultKind)
    controls = [s for s in scenarios.values() if not s.faults]
    assert len(controls) >= 2
    assert all(c.expect.playbook == "none" and c.expect.root_cause == "none" for c in controls)
    for s in scenarios.values():
        if s.faults:
            # the ground truth agrees with the remedy table of issue 3
            assert s.expect.playbook == EXPECTED_PLAYBOOK[FaultKind(s.expect.fault)], s.name
            assert s.expect.root_cause == s.faults[0].target, s.name


@pytest.mark.parametrize(
    ("value", "seconds"), [("90s", 90), ("5m", 300), ("1h", 3600), ("250ms", 0.25), (12, 12)]
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        (
            "severity: medium",
            "severity: extreme",
            [":7: faults[0].severity:", "'low', 'medium' or 'high'"],
        ),
        (
            "kind: memory_leak,",
            "kind: mem_leak,",
            [":7: faults[0].kind:", "'memory_leak'", "'dependency_down'"],
        ),
        (
            "target: cartservice,",
            "target: cartsvc,",
            ["faults[0].target:", "'cartsvc' is not a deployment", "cartservice"],
        ),
        ("warmup: 90s", "warmup: ninety", [":3: warmup:", "90s, 5m"]),
        (
            "pattern: steady",
            "pattern: wavy",
            [":5: traffic.pattern:", "'steady', 'diurnal' or 'spiky'"],
        ),
        (
            "severity: medium}",
            "severity: medium, leak_mb: 3}",
            ["faults[0]:", "unknown field 'leak_mb' for kind memory_leak", "seconds_to_oom"],
        ),
        ("  playbook: restart-deployment\n", "", ["expect.playbook: required field is missing"]),
        ("duration: 300s", "duration: 60s", ["duration (60s) must be longer than warmup"]),
        (
            "  fault: memory_leak",
            "  fault: cpu_hog",
            ["expect.fault cpu_hog is not among the injected faults"],
        ),
        ("name: cart-memory-leak", "name: Cart Leak", ["name:", "should match pattern"]),
    ],
)
def test_malformed_scenarios_name_file_line_field_and_allowed(
    tmp_path: Path, replace: str, by: str, expected: list[str]
) -> None:
    assert replace in GOOD
    path = _write(tmp_path, GOOD.replace(replace, by), "broken.yaml")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"bad\.yaml:2: not valid YAML"):
        load_scenario(_write(tmp_path, "name: x\n  oops: [\n", "bad.yaml"))
    with pytest.raises(ScenarioError, match="a scenario is a mapping"):
        load_scenario(_write(tmp_path, "- 1\n- 2\n", "list.yaml"))
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml")


def test_node_pressure_targets_a_node_and_dependency_down_defaults_to_redis(
    tmp_path: Path,
) -> None:
    text = GOOD.replace(
        "kind: memory_leak, target: cartservice", "kind: node_pressure, target: node-z"
    )
    with pytest.raises(ScenarioError, match="'node-z' is not a node; allowed: node-a, node-b"):
        load_scenario(_write(tmp_path, text))
    text = GOOD.replace("kind: memory_leak, target: cartservice", "kind: dependency_down")
    text = text.replace("fault: memory_leak", "fault: dependency_down")
    assert load_scenario(_write(tmp_path, text)).faults[0].target == "redis-cart"


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, GOOD, "a.yaml")
    _write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(ScenarioError, match=r"b\.yaml: name 'cart-memory-leak' is used"):
        load_all(tmp_path)


def test_command_lists_valid_files_and_fails_on_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from aiops_lab import scenario as cmd

    parser = argparse.ArgumentParser()
    cmd.configure_parser(parser)
    assert cmd.run(parser.parse_args([])) == 0
    out = capsys.readouterr().out
    assert "cart-memory-leak" in out
    assert "restart-deployment" in out
    bad = _write(tmp_path, GOOD.replace("severity: medium", "severity: huge"), "bad.yaml")
    assert cmd.run(parser.parse_args([str(bad)])) == 1
    out = capsys.readouterr().out
    assert "bad.yaml:7: faults[0].severity" in out
    assert "1 of 1 scenario files are invalid" in out
