"""`aiops lab up|inject|status|down` (and `run`, the lab process itself)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from aiops_lab.runner import LabInfo, info_path, lab_dir, read_info, run_lab
from aiops_lab.scenario import ScenarioError, load_scenario
from aiops_lab.sim.flavors import flavor_named


class LabError(Exception):
    """Something a person can fix; printed as one line."""


def up(
    state_dir: Path,
    *,
    rps: float,
    scrape_interval: str,
    metrics: str = "istio",
    timeout_s: float = 180.0,
) -> str:
    running = read_info(state_dir)
    if running is not None:
        return f"the lab is already up (pid {running.pid}):\n{running.describe()}"
    # the lab outlives this command; `lab down` stops it
    _, info = start(
        state_dir,
        rps=rps,
        scrape_interval=scrape_interval,
        metrics=metrics,
        timeout_s=timeout_s,
        owned=False,
    )
    return (
        f"the lab is up (pid {info.pid}, {info.backfill_s:.0f} s of backfill for "
        f"two days of history):\n{info.describe()}"
    )


def start(
    state_dir: Path,
    *,
    rps: float = 50.0,
    scrape_interval: str = "1s",
    metrics: str = "istio",
    timeout_s: float = 180.0,
    owned: bool = True,
) -> tuple[subprocess.Popen[bytes], LabInfo]:
    """Start `aiops lab run` in a process of its own and wait until it is up. `owned`: the lab
    dies with this process (even on SIGKILL), for `aiops demo` and `aiops lab eval`; call
    `stop(proc)` to end it in order. Call from the main thread (the death signal is tied to the
    thread that starts the child)."""
    from aiops.processes import die_with_parent

    try:
        flavor_named(metrics)  # an unknown flavour is refused here, not in the child's log
    except ValueError as exc:
        raise LabError(str(exc)) from exc
    home = lab_dir(state_dir)
    home.parent.mkdir(parents=True, exist_ok=True)
    log_path = home.parent / "lab.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiops.cli",
                "lab",
                "run",
                "--rps",
                str(rps),
                "--scrape-interval",
                scrape_interval,
                "--metrics",
                metrics,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the caller only, who stops the lab in order
            preexec_fn=die_with_parent if owned else None,
            env={**os.environ, "AIOPS_STATE_DIR": str(state_dir.resolve())},
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(
                f"the lab exited with code {proc.returncode} while starting; see {log_path}"
            )
        info = read_info(state_dir)
        if info is not None:
            return proc, info
        time.sleep(0.5)
    proc.terminate()
    raise LabError(f"the lab did not come up within {timeout_s:.0f} s; see {log_path}")


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    """End a lab started with `start`: SIGTERM (it stops Prometheus and its servers), SIGKILL
    if it does not go; then whatever is left of its process group (a Prometheus the lab could
    not stop in time), so nothing outlives the caller."""
    from aiops.processes import stop_process

    stop_process(proc, timeout_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the lab leads its own session (start_new_session)


def _require(state_dir: Path) -> LabInfo:
    info = read_info(state_dir)
    if info is None:
        raise LabError("the lab is not running; start it with `aiops lab up`")
    return info


def inject(state_dir: Path, scenario_file: Path) -> str:
    try:
        scenario = load_scenario(scenario_file)
    except ScenarioError as exc:
        raise LabError(str(exc)) from exc
    info = _require(state_dir)
    response = httpx.post(
        f"{info.shop_url}/lab/scenario", content=scenario_file.read_bytes(), timeout=10
    )
    if response.status_code != 200:
        raise LabError(f"the lab refused {scenario_file}: {response.text.strip()}")
    faults = ", ".join(f"{f.kind.value} on {f.target} at +{f.at:.0f}s" for f in scenario.faults)
    expected = scenario.expect.model_dump(mode="json")
    return (
        f"scenario {scenario.name} started: {faults or 'no faults (control)'} after "
        f"{scenario.warmup:.0f}s of warmup; expected: {expected}"
    )


def status(state_dir: Path) -> str:
    info = _require(state_dir)
    body = httpx.get(f"{info.shop_url}/lab/status", timeout=10).json()
    return json.dumps({"lab": info.__dict__, **body}, indent=2, default=str)


def down(state_dir: Path, timeout_s: float = 30.0) -> str:
    info = read_info(state_dir)
    if info is None:
        return "the lab is not running"
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(info.pid, 0)
        except ProcessLookupError:
            return f"the lab (pid {info.pid}) is down"
        time.sleep(0.2)
    os.kill(info.pid, signal.SIGKILL)
    info_path(state_dir).unlink(missing_ok=True)
    return f"the lab (pid {info.pid}) did not stop in {timeout_s:.0f} s and was killed"


def run(state_dir: Path, *, rps: float, scrape_interval: str, metrics: str = "istio") -> None:
    run_lab(state_dir, rps=rps, scrape_interval=scrape_interval, metrics=metrics)
