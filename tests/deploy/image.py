"""Running the aiops image here: podman with the flags deploy/image/podman-flags.sh sets (runc,
rlimits within the machine's), host networking so the container reaches the test servers on
loopback, and files handed in read-only."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FLAGS_SCRIPT = REPO / "deploy" / "image" / "podman-flags.sh"
BUILD_SCRIPT = REPO / "deploy" / "image" / "build.sh"


def image_tag() -> str:
    from importlib.metadata import version

    return os.environ.get("AIOPS_IMAGE", f"localhost/aiops:{version('aiops-daemon')}")


@cache
def podman_flags() -> list[str]:
    out = subprocess.run(
        ["bash", "-c", f'source "{FLAGS_SCRIPT}"; printf "%s\\n" "${{PODMAN_FLAGS[@]}}"'],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def run_argv(
    image: str,
    *args: str,
    env: dict[str, str] | None = None,
    mounts: dict[Path, str] | None = None,
    name: str | None = None,
    entrypoint: str | None = None,
) -> list[str]:
    argv = ["podman", "run", "--rm", *podman_flags(), "--network", "host"]
    if name:
        argv += ["--name", name]
    if entrypoint:
        argv += ["--entrypoint", entrypoint]
    for key, value in (env or {}).items():
        argv += ["--env", f"{key}={value}"]
    for source, target in (mounts or {}).items():
        argv += ["--volume", f"{source}:{target}"]
    return [*argv, image, *args]


def container_pid(name: str) -> int:
    out = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Pid}}", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def image_size_bytes(image: str) -> int:
    out = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())
