"""The built image, run here with podman: the command as shipped, no package manager or compiler
inside, and a worker in the container processing a lab incident against a real Temporal and the
lab's Prometheus and Kubernetes API.

Opt-in (the build takes minutes):

    AIOPS_TEST_IMAGE=1 python3 -m uv run pytest tests/deploy/test_image.py -s

It builds the image with deploy/image/build.sh when AIOPS_IMAGE (default
localhost/aiops:<version>) is missing. Needs podman, runc and mmdebstrap (Debian packages).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from aiops_lab import commands
from aiops_lab.runner import LabInfo
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from aiops.domain import IncidentStatus, RcaReport
from tests.deploy.image import (
    BUILD_SCRIPT,
    container_pid,
    image_size_bytes,
    image_tag,
    run_argv,
)
from tests.servers import free_port, temporal_dev_server, wait_until

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("AIOPS_TEST_IMAGE") != "1",
        reason="builds and runs the container image; set AIOPS_TEST_IMAGE=1",
    ),
    pytest.mark.timeout(1800),
]


@pytest.fixture(scope="module")
def image() -> str:
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install podman runc mmdebstrap")
    tag = image_tag()
    if subprocess.run(["podman", "image", "exists", tag], check=False).returncode != 0:
        subprocess.run(["bash", str(BUILD_SCRIPT), tag], check=True, timeout=1500)
    return tag


def run(image: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        run_argv(image, *args, **kwargs), capture_output=True, text=True, timeout=120, check=False
    )


def test_the_image_runs_aiops_as_a_non_root_user_without_package_managers(image: str) -> None:
    version = run(image, "version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("aiops ")
    shown = run(image, "config", "show")
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)
    assert settings["playbooks_dir"] == "/etc/aiops/playbooks"
    assert settings["log"]["format"] == "json"
    probe = run(
        image,
        "-c",
        "import os, shutil, json; print(json.dumps({'uid': os.getuid(), 'found': [t for t in "
        "('apt', 'apt-get', 'dpkg', 'pip', 'pip3', 'gcc', 'cc', 'temporal', "
        "'temporal-test-server') if shutil.which(t)]}))",
        entrypoint="/opt/aiops/bin/python",
    )
    assert probe.returncode == 0, probe.stderr
    facts = json.loads(probe.stdout)
    assert facts == {"uid": 65532, "found": []}
    print(f"\nimage {image}: {image_size_bytes(image) / 1e6:.0f} MB")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    state = tmp_path_factory.mktemp("lab-state")
    proc, info = commands.start(state)
    try:
        Path(info.kubeconfig).chmod(0o644)  # the container's user reads it
        yield info
    finally:
        commands.stop(proc)


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    async with temporal_dev_server(shutil.which("temporal") or "temporal") as env:
        yield env


def _env(temporal: WorkflowEnvironment, lab: LabInfo, **extra: str) -> dict[str, str]:
    return {
        "AIOPS_TEMPORAL__ADDRESS": temporal.client.service_client.config.target_host,
        "AIOPS_PROMETHEUS__URL": lab.prometheus_url,
        "AIOPS_KUBERNETES__KUBECONFIG": "/etc/aiops/kubeconfig",
        **extra,
    }


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def test_doctor_and_a_worker_in_the_image_process_a_lab_incident(
    image: str, lab: LabInfo, temporal: WorkflowEnvironment, tmp_path: Path
) -> None:
    mounts = {Path(lab.kubeconfig): "/etc/aiops/kubeconfig:ro"}
    doctor = run(image, "doctor", env=_env(temporal, lab), mounts=mounts)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "Kubernetes" in doctor.stdout and "Prometheus" in doctor.stdout

    port = free_port()
    name = f"aiops-worker-{uuid.uuid4().hex[:8]}"
    env = _env(
        temporal,
        lab,
        AIOPS_TELEMETRY__PORT=str(port),
        AIOPS_DETECTION__INTERVAL_S="1",
        AIOPS_TEMPORAL__TASK_QUEUE=f"aiops-image-{uuid.uuid4().hex[:6]}",
        # The lab's policy: the shop namespace is allowed, plans need an approval.
        AIOPS_POLICIES_DIR="/etc/aiops/lab-policies",
    )
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(REPO / "policies" / "lab.yaml", policies / "default.yaml")
    policies.chmod(0o755)
    mounts[policies] = "/etc/aiops/lab-policies:ro"
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        run_argv(image, "worker", "--start-detection", env=env, mounts=mounts, name=name),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _status(base + "/readyz") == 200 or worker.poll() is not None,
            120,
            "the worker's /readyz",
        )
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
        time.sleep(20)  # idle: detection passes only
        idle = rss_mib(container_pid(name))
        _inject(lab)
        report = await _first_report(temporal.client, timeout_s=300)
        busy = rss_mib(container_pid(name))
        metrics = httpx.get(base + "/metrics", timeout=5).text
        print(f"\nworker in the image: RSS {idle:.0f} MiB idle, {busy:.0f} MiB after an incident")
        assert report.hypotheses, "the worker in the image produced an empty root-cause report"
        assert 'aiops_investigation_seconds_count{outcome="succeeded"}' in metrics
    finally:
        subprocess.run(["podman", "stop", "--time", "20", name], capture_output=True, check=False)
        worker.wait(timeout=60)
        log.close()
    lines = (tmp_path / "worker.log").read_text().splitlines()
    assert all(json.loads(line) for line in lines if line.strip())


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def _inject(lab: LabInfo) -> None:
    scenario = REPO / "lab" / "aiops_lab" / "scenarios" / "cart-bad-rollout.yaml"
    response = httpx.post(f"{lab.shop_url}/lab/scenario", content=scenario.read_bytes(), timeout=10)
    assert response.status_code == 200, response.text


async def _first_report(client: Client, timeout_s: float) -> RcaReport:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async for execution in client.list_workflows("WorkflowType = 'IncidentWorkflow'"):
            handle = client.get_workflow_handle(execution.id)
            status = await handle.query("status", result_type=IncidentStatus)
            if status not in (IncidentStatus.OPEN, IncidentStatus.INVESTIGATING):
                report = await handle.query("rca", result_type=RcaReport)
                if report is not None:
                    return report
        await asyncio.sleep(2)
    raise TimeoutError("no incident got a root-cause report from the worker in the image")
