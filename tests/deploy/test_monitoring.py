"""aiops' own monitoring as shipped: a real worker (`aiops worker --start-detection`, its own
process) scraped by a real Prometheus that loads the shipped PrometheusRule; promtool's unit tests
of every alert; the Grafana dashboard's queries evaluated against the same Prometheus."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from tests.servers import (
    PrometheusProcess,
    free_port,
    prometheus_binary,
    temporal_dev_server,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "kubernetes" / "monitoring"
DASHBOARD = REPO / "deploy" / "grafana" / "aiops-dashboard.json"
RULES_TESTS = MONITORING / "rules-test.yaml"
METRIC = re.compile(r"\b((?:aiops|temporal|process)_[a-z0-9_]+)")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_info")


def rule_groups() -> list[dict[str, Any]]:
    rule: dict[str, Any] = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


@pytest.fixture(scope="module")
def rules_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aiops-rules-") as tmp:
        path = Path(tmp) / "aiops-rules.yaml"
        path.write_text(yaml.safe_dump({"groups": rule_groups()}))
        yield path


def test_the_rules_pass_promtool_check_and_unit_tests(rules_file: Path, tmp_path: Path) -> None:
    promtool = Path(prometheus_binary()).with_name("promtool")
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = yaml.safe_load(RULES_TESTS.read_text())
    tests["rule_files"] = [str(rules_file)]
    unit = tmp_path / "tests.yaml"
    unit.write_text(yaml.safe_dump(tests))
    ran = subprocess.run(
        [str(promtool), "test", "rules", str(unit)], capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    tested = {
        case["alertname"]
        for t in tests["tests"]
        for case in t["alert_rule_test"]
        if case["exp_alerts"]
    }
    alerts = {r["alert"] for g in rule_groups() for r in g["rules"]}
    assert alerts <= tested, f"alerts without a firing unit test: {sorted(alerts - tested)}"


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of its own: the detection loop's workflow id is one per namespace."""
    async with temporal_dev_server(str(Path(sys.executable).with_name("temporal"))) as env:
        yield env


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def _query(prometheus: str, expr: str) -> dict[str, Any]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    data: dict[str, Any] = response.json()
    return data


async def test_prometheus_scrapes_a_running_worker_and_evaluates_the_rules(
    temporal: WorkflowEnvironment, rules_file: Path, tmp_path: Path
) -> None:
    port = free_port()
    prom = PrometheusProcess(tmp_path / "prometheus")
    prom.folder.mkdir()
    (prom.folder / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{rules_file}']\n"
        "scrape_configs:\n"
        f"  - {{job_name: aiops, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env |= {
        "AIOPS_TEMPORAL__ADDRESS": temporal.client.service_client.config.target_host,
        "AIOPS_TELEMETRY__PORT": str(port),
        "AIOPS_PROMETHEUS__URL": "http://127.0.0.1:1",  # replaced once Prometheus has its port
        "AIOPS_DETECTION__INTERVAL_S": "1",
        "AIOPS_DETECTION__PRIME_S": "60",
        "AIOPS_STATE_DIR": str(tmp_path / "state"),
        "AIOPS_LOG__FORMAT": "json",
        "HOME": str(tmp_path),
    }
    prom.start()
    env["AIOPS_PROMETHEUS__URL"] = prom.url
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("aiops")), "worker", "--start-detection"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: (r := _get(base + "/readyz")) is not None and r.status_code == 200,
            60,
            f"the worker's /readyz (its log: {log})",
        )
        assert _get(base + "/healthz").status_code == 200  # type: ignore[union-attr]
        wait_until(
            lambda: bool(
                _query(prom.url, 'aiops_detection_passes_total{outcome="succeeded"} > 2')["data"][
                    "result"
                ]
            ),
            60,
            "three detection passes scraped by Prometheus",
        )
        scrape = httpx.get(base + "/metrics", timeout=5).text
        families = {f.name for f in text_string_to_metric_families(scrape)}
        assert "temporal_workflow_completed" in families or any(
            name.startswith("temporal_activity_execution") for name in families
        ), "the Temporal SDK's metrics are missing from /metrics"
        referenced = {
            family(m) for _, expr in dashboard_queries() for m in METRIC.findall(expr)
        } | {
            family(m) for g in rule_groups() for r in g["rules"] for m in METRIC.findall(r["expr"])
        }
        missing = sorted(name for name in referenced if family(name) not in families)
        assert not missing, f"the dashboard and rules use series /metrics never has: {missing}"
        for title, expr in dashboard_queries():
            answer = _query(prom.url, expr)
            assert answer["status"] == "success", f"{title}: {expr}: {answer}"
        wait_until(lambda: _rules_evaluated(prom.url), 30, "the rules to be evaluated")
        rules = httpx.get(prom.url + "/api/v1/rules", timeout=5).json()["data"]["groups"]
        for group in rules:
            for rule in group["rules"]:
                assert rule["health"] == "ok", rule
                if rule["name"] == "AiopsDetectionLoopStalled":
                    assert rule["state"] == "inactive", "a running loop must not look stalled"
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
        prom.stop()
    assert code == 0, log.read_text()[-2000:]
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    for line in lines:
        json.loads(line)  # every line a JSON object, temporalio's and the libraries' included


def _rules_evaluated(prometheus: str) -> bool:
    groups = httpx.get(prometheus + "/api/v1/rules", timeout=5).json()["data"]["groups"]
    return (
        bool(groups)
        and all(r.get("lastEvaluation", "").startswith("2") for g in groups for r in g["rules"])
        and all(r.get("evaluationTime") is not None for g in groups for r in g["rules"])
    )
