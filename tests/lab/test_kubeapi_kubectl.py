"""The lab API with the real kubectl (skipped where kubectl is not installed): what an SRE would
type works, including discovery, watches (rollout status) and drain with PDBs and DaemonSets."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiops_lab.cluster import Cluster, ClusterConfig
from aiops_lab.kubeapi import start_lab_api

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[tuple[Cluster, Callable[..., str]]]:
    cluster = Cluster.boutique(ClusterConfig(pod_start_s=0.05, pod_terminate_s=0.05))
    server = start_lab_api(cluster)
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}

    def run(*args: str) -> str:
        done = subprocess.run(
            [str(KUBECTL), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    try:
        yield cluster, run
    finally:
        server.stop()


def test_kubectl_rollout_undo_and_drain(kubectl: tuple[Cluster, Callable[..., str]]) -> None:
    cluster, run = kubectl
    assert "frontend" in run("get", "deployments", "-n", "boutique", "-o", "name")
    run("set", "image", "deployment/adservice", "-n", "boutique", "server=adservice:bad")
    run("rollout", "status", "deployment/adservice", "-n", "boutique", "--timeout=20s")
    assert "adservice:bad" in run(
        "get",
        "deploy",
        "adservice",
        "-n",
        "boutique",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    run("rollout", "undo", "deployment/adservice", "-n", "boutique")
    run("rollout", "status", "deployment/adservice", "-n", "boutique", "--timeout=20s")
    image = run(
        "get",
        "deploy",
        "adservice",
        "-n",
        "boutique",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image.endswith("adservice:v0.10.2")
    out = run("drain", "node-a", "--ignore-daemonsets", "--timeout=30s")
    assert "node/node-a drained" in out
    left = run("get", "pods", "-A", "--field-selector", "spec.nodeName=node-a", "-o", "name")
    assert left.split() == ["pod/kube-proxy-node-a"]
    snap = cluster.snapshot()
    assert next(n for n in snap.nodes if n.name == "node-a").unschedulable


def test_kubectl_get_prints_the_usual_columns(kubectl: tuple[Cluster, Callable[..., str]]) -> None:
    cluster, run = kubectl
    pods, _ = cluster.list("pods", "boutique", label_selector="app=cartservice")
    pod = pods[0]["metadata"]["name"]
    cluster.wait_for(lambda c: c.get("pods", "boutique", pod)["status"]["phase"] == "Running")
    cluster.report_container_exit("boutique", pod, "OOMKilled", 137)
    cluster.wait_for(
        lambda c: (
            c.get("pods", "boutique", pod)["status"]["containerStatuses"][0]["state"].get("running")
            is not None
        )
    )
    cluster.report_container_exit("boutique", pod, "OOMKilled", 137)
    table = run("get", "pods", "-n", "boutique", "-o", "wide")
    header, *rows = table.splitlines()
    assert header.split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    row = next(r.split() for r in rows if r.startswith(pod))
    assert row[1:4] == ["0/1", "CrashLoopBackOff", "2"]
    run("cordon", "node-c")
    nodes = run("get", "nodes")
    assert "node-c   Ready,SchedulingDisabled" in nodes
    deployments = run("get", "deployments", "-n", "boutique")
    assert deployments.splitlines()[0].split() == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
    ]
