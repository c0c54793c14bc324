"""The product wheel holds the product only, and installs and runs without the lab: built from this
checkout, installed with the locked dependencies of `aiops-daemon` alone into a fresh venv (from
uv's cache: no network), where `aiops version` works and `aiops demo` says the lab is missing and
how to add it. The README's "Architecture" reports the wheel's size with the same commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from subprocess import PIPE

import pytest

REPO = Path(__file__).resolve().parents[1]


def _uv() -> str:
    # `uv run` names its own binary in UV; the repo's tests run under it (README).
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv not found: run the tests with `python3 -m uv run pytest` (README)")
    return uv


def _run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{proc.args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_the_product_wheel_installs_and_runs_without_the_lab(tmp_path: Path) -> None:
    uv = _uv()
    dist = tmp_path / "dist"
    _ok(_run(uv, "build", "--offline", "--wheel", "--package", "aiops-daemon", "-o", dist))
    (wheel,) = dist.glob("aiops_daemon-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"aiops", "workflows", wheel.name.split("-py3")[0] + ".dist-info"}, tops

    venv = tmp_path / "venv"
    requirements = tmp_path / "requirements.txt"
    _ok(_run(uv, "venv", "--offline", "--quiet", venv))
    _ok(
        _run(
            uv, "export", "--frozen", "--package", "aiops-daemon", "--no-dev",
            "--no-emit-workspace", "--no-hashes", "--quiet", "-o", requirements,
        )
    )  # fmt: skip
    python = venv / "bin" / "python"
    _ok(
        _run(
            uv, "pip", "install", "--offline", "--quiet", "--python", python,
            "-r", requirements, wheel,
        )
    )  # fmt: skip

    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    aiops = venv / "bin" / "aiops"
    commands: dict[str, list[str | Path]] = {
        "import": [python, "-c", "import aiops_lab"],
        "version": [aiops, "version"],
        "demo": [aiops, "demo"],
    }
    # Side by side: each start of the CLI imports the product (seconds on a loaded machine).
    procs = {
        name: subprocess.Popen(argv, env=env, stdout=PIPE, stderr=PIPE, text=True)
        for name, argv in commands.items()
    }
    try:
        done = {
            name: (proc.communicate(timeout=120), proc.returncode) for name, proc in procs.items()
        }
    finally:
        for proc in procs.values():
            proc.kill()
    (_, err), code = done["import"]
    assert code != 0 and "No module named 'aiops_lab'" in err, err
    (out, err), code = done["version"]
    assert code == 0 and out.startswith("aiops "), err
    (_, err), code = done["demo"]
    assert code == 1, err
    assert "`aiops demo` comes with the lab, which is not installed" in err, err
    assert "pip install 'aiops-daemon[lab]'" in err, err
    assert "Traceback" not in err, err
