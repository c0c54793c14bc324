"""The test harness itself: servers it starts are gone once their fixture ends."""

from __future__ import annotations

import contextlib

import psutil
from temporalio.testing import WorkflowEnvironment

from tests.conftest import _binary
from tests.servers import free_port, run_prometheus


def test_prometheus_fixture_stops_its_process() -> None:
    with run_prometheus([f"127.0.0.1:{free_port()}"]) as server:
        pid = server.process.pid
        assert psutil.pid_exists(pid)
        assert server.url.startswith("http://127.0.0.1:")
    assert server.process.poll() is not None, "Prometheus still running after its fixture"


async def test_dev_server_environment_stops_its_process() -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"), ip="127.0.0.1", port=free_port()
    )
    started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert any("temporal" in p.name() for p in started)
    await env.shutdown()
    for proc in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.wait(timeout=10)
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
