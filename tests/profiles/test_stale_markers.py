"""Staleness markers: what a scraped Prometheus writes when a target or a series disappears (a
pod that crashed, a deployment deleted). Checked with promtool's rule tests, Prometheus' own
engine and storage, which take `stale` as an input value; the backfilled states
(test_signal_states.py) cover series that just stopped."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aiops.domain import FaultType
from aiops.playbooks import Observed, plan_remediation
from aiops.profiles import assemble, load_profiles
from tests.profiles.test_signal_states import PLAYBOOKS, report

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")

DEST = 'destination_workload="{w}",destination_workload_namespace="shop",source_workload="frontend"'
# one sample a minute: healthy 0-9 min, crash-looping 10-17 (its pods' series are marked stale;
# only the callers see the refused calls), rolled back and serving from 18
CRASHED = "0+600x9 stale _x7 6000+600x12"  # its pods' own series
SERIES = {
    'istio_requests_total{reporter="destination",response_code="200",%s}': CRASHED,
    'istio_requests_total{reporter="source",response_code="200",%s}': CRASHED,
    'istio_requests_total{reporter="source",response_code="503",response_flags="UH",%s}': (
        "_x10 0+600x7 stale"
    ),
}
POD = '{namespace="shop",pod="%s-5d9f8b6c7d-x2x7k",container="server"}'
KUBE = {
    'kube_deployment_spec_replicas{namespace="shop",deployment="%s"}': "2x30",
    'kube_deployment_status_replicas_available{namespace="shop",deployment="%s"}': "2x9 0x7 2x12",
    "kube_pod_container_status_restarts_total" + POD: "0x9 1+1x7 8x12",
}
FAMILIES = {
    "istio_requests_total": frozenset(),
    "kube_deployment_spec_replicas": frozenset(),
    "kube_deployment_status_replicas_available": frozenset(),
    "kube_pod_container_status_restarts_total": frozenset(),
}


def rollback_query(target: str) -> str:
    shipped = load_profiles()
    live = assemble(shipped.vocabulary, shipped.profiles.values(), FAMILIES)
    planned = plan_remediation(
        report(target, "shop", FaultType.CRASHLOOP), PLAYBOOKS, Observed(replicas=2), live
    )
    assert planned.plan.verification is not None, planned.plan.rationale
    return planned.plan.verification.query


def test_a_crash_loop_marked_stale_fails_verification_until_the_rollback_serves(
    tmp_path: Path,
) -> None:
    inputs = [
        {"series": name % DEST.format(w="crashing"), "values": values}
        for name, values in SERIES.items()
    ] + [{"series": name % "crashing", "values": values} for name, values in KUBE.items()]
    # a deployment deleted at minute 10: its series are marked stale, not left to linger
    inputs += [
        {"series": name % "gone", "values": values.split(" ")[0].replace("x30", "x9") + " stale"}
        for name, values in KUBE.items()
    ]
    tests = [
        {
            "expr": rollback_query("crashing"),
            "eval_time": f"{minute}m",
            "exp_samples": [{"labels": "{}", "value": 1}] if holds else [],
        }
        for minute, holds in ((5, True), (14, False), (19, False), (28, True))
    ] + [
        {"expr": rollback_query("gone"), "eval_time": "11m", "exp_samples": []},
        {
            "expr": rollback_query("gone"),
            "eval_time": "5m",
            "exp_samples": [{"labels": "{}", "value": 1}],
        },
    ]
    spec = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": inputs, "promql_expr_test": tests}],
    }
    path = tmp_path / "stale.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    failures = [
        ln for ln in out.stdout.splitlines() if "time:" in ln or "exp:" in ln or "got:" in ln
    ]
    assert out.returncode == 0, "\n".join(ln[-200:] for ln in failures) + out.stderr[-2000:]
