"""Scoring of the lab detection bench: what counts as detecting a fault, what is a false
anomaly, the TTD ratio against the alerting rule, and that the rule file and the lab's
Prometheus config with it are accepted by promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from aiops_lab.eval.lab_detection import (
    Observation,
    ScenarioResult,
    alert_rules,
    entity_matches,
    shorten,
    summary,
    table,
)
from aiops_lab.prometheus_config import write_prometheus_config
from aiops_lab.scenario import SCENARIO_DIR, load_scenario

from aiops.detect.catalog import BUILTIN_SIGNALS


def test_entity_matches_workload_pod_deployment_and_node() -> None:
    assert entity_matches({"destination_workload": "cartservice"}, "cartservice")
    assert entity_matches({"pod": "cartservice-4884xthd27-gfkmm"}, "cartservice")
    assert entity_matches({"pod": "redis-cart-9m85kqkm7q-bjzvq"}, "redis-cart")
    assert entity_matches({"instance": "node-a:9100"}, "node-a")
    # redis-cart's pods are not cartservice's, nor "redis"'s
    assert not entity_matches({"pod": "redis-cart-9m85kqkm7q-bjzvq"}, "redis")
    assert not entity_matches({"destination_workload": "frontend"}, "cartservice")
    assert not entity_matches({"destination_workload": "frontend"}, "none")


def _result(**kw: object) -> ScenarioResult:
    base: dict[str, object] = dict(
        name="cart-bad-rollout",
        root_cause="cartservice",
        fault="bad_rollout",
        played_at=1000.0,
        fault_at=1030.0,
        ends_at=1180.0,
    )
    base.update(kw)
    return ScenarioResult(**base)  # type: ignore[arg-type]


def test_detection_ttd_false_anomalies_and_alert_ratio() -> None:
    r = _result(
        anomalies=[
            Observation("latency_p99", {"destination_workload": "frontend"}, 1010.0, 1008.0),
            Observation("error_ratio", {"destination_workload": "cartservice"}, 1033.0, 1031.0),
            Observation("cpu_usage", {"pod": "adservice-a1-b2"}, 1040.0, 1039.0),
        ],
        alerts=[
            Observation("error_ratio", {"destination_workload": "cartservice"}, 1105.0, 1043.0),
            Observation("error_ratio", {"destination_workload": "cartservice"}, 990.0, 900.0),
        ],
    )
    assert r.detected and r.root_cause_hit
    assert r.ttd == pytest.approx(3.0)
    assert [a.signal for a in r.false_anomalies] == ["latency_p99"]  # before the fault
    assert [a.signal for a in r.unmatched_in_fault] == ["cpu_usage"]
    assert r.alert_ttd == pytest.approx(75.0)  # the alert left over from before is ignored
    s = summary([r])
    assert s["median_ttd_ratio_alert_over_detector"] == 25.0
    assert "cart-bad-rollout" in table([r])


def test_missed_fault_and_control() -> None:
    missed = _result(anomalies=[])
    control = _result(
        name="control-benign-rollout",
        root_cause="none",
        fault="none",
        fault_at=None,
        anomalies=[
            Observation("request_rate", {"destination_workload": "frontend"}, 1100.0, 1099.0)
        ],
    )
    assert not missed.detected and missed.ttd is None
    assert len(control.false_anomalies) == 1
    s = summary([missed, control])
    assert s["detected"] == 0
    assert s["control_anomalies"] == {"control-benign-rollout": 1}
    assert "NO" in table([missed])


def test_shorten_keeps_faults_and_sets_duration() -> None:
    s = load_scenario(SCENARIO_DIR / "checkout-bad-rollout.yaml")
    short = shorten(s, warmup=30, hold=150)
    assert short.warmup == 30 and short.duration == 180
    assert short.faults == s.faults and short.expect == s.expect


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_rules_and_config_pass_promtool(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yml"
    rules.write_text(yaml.safe_dump(alert_rules(list(BUILTIN_SIGNALS))))
    cfg = write_prometheus_config(
        tmp_path / "prometheus.yml", ["127.0.0.1:9999"], rule_files=[rules]
    )
    assert yaml.safe_load(cfg.read_text())["rule_files"] == [str(rules.resolve())]
    out = subprocess.run(
        ["promtool", "check", "config", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "11 rules found" in out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_error_ratio_is_zero_not_absent_without_errors(tmp_path: Path) -> None:
    """A workload that never answered 5xx has no 5xx series; its error ratio must be 0 (a
    series the detector can learn), and a workload with errors gets its true ratio."""
    from aiops.detect.catalog import build_catalog

    expr = build_catalog()["error_ratio"].render(window="1m")
    ok = (
        'istio_requests_total{reporter="destination",destination_workload="%s",'
        'destination_workload_namespace="shop",response_code="%s"}'
    )
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {"series": ok % ("cart", "200"), "values": "0+30x20"},
                    {"series": ok % ("checkout", "200"), "values": "0+30x20"},
                    {"series": ok % ("checkout", "503"), "values": "0+10x20"},
                ],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "4m",
                        "exp_samples": [
                            {
                                "labels": '{namespace="shop",workload="cart"}',
                                "value": 0,
                            },
                            {
                                "labels": '{namespace="shop",workload="checkout"}',
                                "value": 0.25,
                            },
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    out = subprocess.run(
        ["promtool", "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_control_runs_ten_minutes_with_its_seasonal_swing_to_the_end() -> None:
    from aiops_lab.eval.lab_detection import lengthen_control
    from aiops_lab.scenario import SCENARIO_DIR, load_all

    shipped = load_all(SCENARIO_DIR)["control-seasonal-traffic"]
    long = lengthen_control(shipped, 600.0)
    assert long.duration == 600.0 and long.warmup == shipped.warmup
    [swing] = long.noise
    assert swing.at + (swing.duration or 0.0) == 600.0 - long.warmup
    assert lengthen_control(shipped, 60.0) == shipped  # never shortened
