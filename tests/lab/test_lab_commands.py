"""`aiops lab up|inject|status|down` as a person runs them: real Prometheus with two days of
history, the lab Kubernetes API through the official client, scenarios checked before they run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from kubernetes import client as k8s
from kubernetes import config as k8s_config

AIOPS = str(Path(sys.executable).parent / "aiops")
REPO = Path(__file__).resolve().parents[2]


def aiops(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env["AIOPS_STATE_DIR"] = str(state)
    return subprocess.run(
        [AIOPS, *args], env=env, capture_output=True, text=True, timeout=240, check=False
    )


def test_lab_up_inject_status_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = aiops(state, "lab", "up")
    assert up.returncode == 0, up.stderr
    info = json.loads((state / "lab" / "lab.json").read_text())
    lab = psutil.Process(info["pid"])
    children = lab.children(recursive=True)
    try:
        assert info["prometheus_url"] in up.stdout
        assert info["kubeconfig"] in up.stdout

        api = k8s_config.new_client_from_config(config_file=info["kubeconfig"])
        pods = k8s.CoreV1Api(api).list_namespaced_pod("boutique", label_selector="app=cartservice")
        assert len(pods.items) >= 1
        api.close()

        prom = info["prometheus_url"]
        day_ago = time.time() - 86_400
        old = httpx.get(
            f"{prom}/api/v1/query",
            params={
                "query": 'sum(rate(istio_requests_total{destination_workload="frontend"}[5m]))',
                "time": str(day_ago),
            },
        ).json()
        assert float(old["data"]["result"][0]["value"][1]) > 0, "backfilled history"

        bad = tmp_path / "bad.yaml"
        bad.write_text(
            "name: x\nseed: 1\nduration: 60s\ntraffic: {rps: 10, pattern: steady}\n"
            "faults:\n  - {at: 0s, kind: meltdown, target: cartservice}\n"
            "expect: {root_cause: cartservice, fault: memory_leak, playbook: none}\n"
        )
        refused = aiops(state, "lab", "inject", str(bad))
        assert refused.returncode == 1
        assert str(bad) in refused.stderr
        assert "kind" in refused.stderr

        played = aiops(
            state, "lab", "inject", str(REPO / "lab/aiops_lab/scenarios/cart-bad-rollout.yaml")
        )
        assert played.returncode == 0, played.stderr
        status = json.loads(aiops(state, "lab", "status").stdout)
        assert status["scenario"]["name"] == "cart-bad-rollout"
        assert {s["name"] for s in status["services"]} >= {"frontend", "cartservice", "redis-cart"}
    finally:
        down = aiops(state, "lab", "down")
    assert down.returncode == 0
    assert "is down" in down.stdout
    for proc in [lab, *children]:
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    assert aiops(state, "lab", "status").returncode == 1
