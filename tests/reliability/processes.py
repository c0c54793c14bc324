"""Processes the reliability tests start, kill and restart: worker processes and the Temporal dev
server as `aiops dev` runs it (faults in front of the lab Kubernetes API: tests/faultproxy.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHistory

from aiops.config import DevServerSettings, Settings, TemporalSettings
from aiops.devstack import start_temporal_dev_server
from aiops.integrations.temporal import TemporalUnavailableError, connect
from aiops.processes import die_with_parent, stop_process
from tests.servers import free_port

REPO = Path(__file__).resolve().parents[2]
AIOPS = str(Path(sys.executable).parent / "aiops")


def worker_env(
    *,
    temporal: str,
    task_queue: str,
    state_dir: Path,
    prometheus: str,
    kubeconfig: Path,
    **settings: str,
) -> dict[str, str]:
    """The environment of a worker process: only the settings given here, the rest defaults
    (the repository's playbooks and policies)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    env.update(
        {
            "AIOPS_TEMPORAL__ADDRESS": temporal,
            "AIOPS_TEMPORAL__TASK_QUEUE": task_queue,
            "AIOPS_STATE_DIR": str(state_dir),
            "AIOPS_PROMETHEUS__URL": prometheus,
            "AIOPS_KUBERNETES__KUBECONFIG": str(kubeconfig),
            "AIOPS_PLAYBOOKS_DIR": str(REPO / "playbooks"),
            "AIOPS_POLICIES_DIR": str(REPO / "policies"),
            "AIOPS_LOG__FORMAT": "json",
        }
    )
    env.update({f"AIOPS_{k.upper()}": v for k, v in settings.items()})
    return env


class WorkerProcess:
    """One worker process; its Temporal identity is the SDK default, `<pid>@<host>`."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv = argv
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def fixed_rca(cls, env: dict[str, str], log: Path, *args: str) -> WorkerProcess:
        """The shipped worker whose investigations find "cartservice leaks memory"
        (tests/reliability/worker_main.py; `args`: its options, e.g. --start-detection)."""
        return cls([sys.executable, "-m", "tests.reliability.worker_main", *args], env, log)

    @classmethod
    def labelled(cls, env: dict[str, str], log: Path) -> WorkerProcess:
        """The shipped worker whose investigations read the root cause off the incident's
        anomaly labels (tests/reliability/worker_main.py --labelled)."""
        return cls([sys.executable, "-m", "tests.reliability.worker_main", "--labelled"], env, log)

    @classmethod
    def cli(cls, env: dict[str, str], log: Path, *args: str) -> WorkerProcess:
        """`aiops worker ARGS` exactly as an operator runs it."""
        return cls([AIOPS, "worker", *args], env, log)

    def start(self) -> WorkerProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # never outlive the test run
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "the worker was not started"
        return self.process.pid

    @property
    def identity(self) -> str:
        return f"{self.pid}@{socket.gethostname()}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no activity gets to report anything."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 15)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class DevServer:
    """`temporal server start-dev` exactly as `aiops dev` starts it (SQLite file under the state
    dir, our search attributes), on fixed free ports so that it can be restarted in place."""

    def __init__(self, state_dir: Path) -> None:
        port = free_port()
        self.settings = Settings(
            state_dir=state_dir,
            dev_server=DevServerSettings(port=port, ui_port=free_port(), log_level="error"),
            temporal=TemporalSettings(address=f"127.0.0.1:{port}"),
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return self.settings.temporal.address

    @property
    def db_file(self) -> Path:
        return self.settings.state_dir / "temporal.db"

    async def start(self) -> Client:
        self.process = start_temporal_dev_server(self.settings)
        for _ in range(240):
            if self.process.poll() is not None:
                raise RuntimeError(f"the dev server exited: see {self.settings.state_dir}")
            try:
                return await connect(self.settings.temporal, timeout_s=1.0)
            except TemporalUnavailableError:
                await asyncio.sleep(0.25)
        raise TimeoutError(f"the dev server on {self.address} did not come up in 60 s")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 20)


async def wait_for_pollers(
    client: Client, task_queue: str, identities: set[str], timeout_s: float = 60
) -> None:
    """Until every identity polls the task queue for workflow tasks (the worker is up)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    seen: set[str] = set()
    for _ in range(int(timeout_s * 4)):
        described = await client.workflow_service.describe_task_queue(request)
        seen = {p.identity for p in described.pollers}
        if identities <= seen:
            return
        await asyncio.sleep(0.25)
    raise TimeoutError(f"workers {sorted(identities - seen)} never polled {task_queue}")


def worked_on(history: WorkflowHistory) -> set[str]:
    """Identities of the workers that completed workflow tasks or ran activities."""
    found: set[str] = set()
    for event in history.events:
        for attrs in (
            event.workflow_task_completed_event_attributes,
            event.activity_task_started_event_attributes,
            event.activity_task_completed_event_attributes,
        ):
            if attrs.identity:
                found.add(attrs.identity)
    return found
