"""`aiops demo` and `aiops lab eval` end to end, as a person runs them: each starts the lab (real
Prometheus, the lab Kubernetes API) and the daemon (Temporal dev server, worker, detection loop),
plays a bad cartservice rollout and must see it detected, diagnosed, approved through `decide`,
rolled back, verified and recovered — and leave no process behind.

Both commands wait minutes on purpose (the rollback playbook verifies over a 3-minute hold), so
the two run side by side in one test to keep the suite's wall time down. The demo's lab speaks
Istio (the default); the evaluation's lab speaks OpenTelemetry (`--metrics otel`), so the same
run proves a cluster without a mesh is watched, diagnosed and verified through its profiles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from aiops_lab.scenario import SCENARIO_DIR

from tests.servers import free_port

AIOPS = str(Path(sys.executable).parent / "aiops")
CONTROL = """\
name: control-short
description: no fault; a healthy adservice release and a short traffic spike.
seed: 43
warmup: 20s
duration: 120s
traffic: {rps: 50, pattern: steady}
noise:
  - {at: 10s, kind: benign_rollout, target: adservice}
  - {at: 50s, kind: short_spike, duration: 15s, magnitude: 1.7}
expect:
  root_cause: none
  fault: none
  playbook: none
"""
REPO = Path(__file__).resolve().parents[1]


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(
        {
            "AIOPS_STATE_DIR": str(state),
            "AIOPS_DEV_SERVER__PORT": str(free_port()),
            "AIOPS_DEV_SERVER__UI_PORT": str(free_port()),
            "FASTMCP_CHECK_FOR_UPDATES": "off",
        }
    )
    return env


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.timeout(1200)
def test_demo_and_lab_eval_heal_a_bad_rollout_end_to_end(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "cart-bad-rollout.yaml").write_text(
        (SCENARIO_DIR / "cart-bad-rollout.yaml").read_text()
    )
    # The shipped control, shortened to fit CI: a healthy release and a traffic spike must
    # open no incident (the eval runs it after the fault, as the lab then has a rollback in
    # its history too).
    (scenarios / "control-short.yaml").write_text(CONTROL)

    demo = subprocess.Popen(
        [AIOPS, "demo", "--timeout", "480"],
        cwd=REPO,
        env=_env(tmp_path / "demo-state"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lab_eval = subprocess.Popen(
        [
            AIOPS,
            "lab",
            "eval",
            "--scenarios",
            str(scenarios),
            "--json",
            str(tmp_path / "figures.json"),
            "--warmup",
            "20",
            "--hold",
            "200",
            "--settle",
            "20",
            "--cooldown",
            "5",
            "--metrics",
            "otel",
            "--keep",
            str(tmp_path / "kept"),
        ],
        cwd=REPO,
        env=_env(tmp_path / "eval-state"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 960
        while time.monotonic() < deadline and (demo.poll() is None or lab_eval.poll() is None):
            seen |= {p.pid for proc in (demo, lab_eval) for p in _descendants(proc.pid)}
            time.sleep(2)
    finally:
        for proc in (demo, lab_eval):
            if proc.poll() is None:
                proc.terminate()
        demo_out, demo_err = demo.communicate(timeout=120)
        eval_out, eval_err = lab_eval.communicate(timeout=120)

    assert demo.returncode == 0, f"demo failed:\n{demo_out}\n{demo_err[-3000:]}"
    for stage in (
        "the lab is up",
        "Temporal UI: http://127.0.0.1:",
        "injected scenario",
        "detected: incident",
        "root cause: cartservice",
        "plan: playbook rollback-deployment",
        "approved plan",
        "k8s.rollout_undo on Deployment/boutique/cartservice",
        "is verifying",
        "summary:",
        "stopped the daemon and the lab",
    ):
        assert stage in demo_out, f"the demo did not narrate {stage!r}:\n{demo_out}"
    assert "Traceback" not in demo_err

    assert lab_eval.returncode == 0, f"lab eval failed:\n{eval_out}\n{eval_err[-3000:]}"
    assert eval_out.strip().splitlines()[-1] == "LAB pass: 2/2", eval_out
    figures = json.loads((tmp_path / "figures.json").read_text())
    cart, control = figures["scenarios"]
    assert control["name"] == "control-short"
    assert control["false_incidents"] == [] and control["unsafe_actions"] == []
    assert cart["name"] == "cart-bad-rollout"
    assert cart["detected"] is True and 0 < cart["mttd_s"] < 60
    assert cart["rca_rank"] == 1
    assert cart["playbook"] == cart["expected_playbook"] == "rollback-deployment"
    assert cart["remediated"] is True and cart["recovered"] is True
    assert cart["recovery_s"] > cart["mttd_s"]
    assert cart["unsafe_actions"] == []
    assert figures["summary"]["passed"] == figures["summary"]["total"] == 2
    assert cart["report_s"] and figures["summary"]["report_p95_s"] == max(cart["report_s"])
    assert cart["suspects"][0].startswith("cartservice bad_rollout")
    # --keep leaves the run's state for a post-mortem: every incident's history is in it
    assert (tmp_path / "kept" / "temporal.db").stat().st_size > 0

    still = [
        p
        for p in (psutil.Process(pid) for pid in seen if psutil.pid_exists(pid))
        if p.status() != psutil.STATUS_ZOMBIE
    ]
    assert not still, f"left behind: {[p.cmdline() for p in still]}"
