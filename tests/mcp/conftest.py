"""MCP fixtures: the lab (Prometheus with the shop's metrics and the lab Kubernetes API), a
policy whose people have MCP tokens, and settings pointing at all of it."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiops_lab.runner import LabInfo, read_info, run_lab

from aiops.config import (
    KubernetesSettings,
    McpSettings,
    PrometheusSettings,
    Settings,
    SigningSettings,
    TemporalSettings,
)
from tests.incident_fixtures import policy_yaml
from tests.keys import write_key

REPO = Path(__file__).resolve().parents[2]
NS = "boutique"
EDGES = (
    "sum by (source_workload, destination_workload) (rate(istio_requests_total{"
    'reporter="destination"}[1m]))'
)

# token -> principal; the policy maps principals to people (alice and bob approve; carol is a
# known person without the approver role; the viewer token maps to nobody in the policy).
TOKENS = {
    "tok-alice-0123456789": "alice@example.com",
    "tok-bob-0123456789": "bob@example.com",
    "tok-carol-0123456789": "carol@example.com",
    "tok-viewer-0123456789": "viewer@example.com",
}
ALICE, BOB, CAROL, VIEWER = TOKENS


MCP_SERVER = "mcp-server"  # the front door's name; its key is tests.keys.signer(MCP_SERVER)
KEYS = tempfile.TemporaryDirectory(prefix="aiops-mcp-keys-")  # removed when the tests end


def mcp_policy_yaml() -> str:
    """The incident tests' policy, with each person's MCP name and this server as the trusted
    MCP front door."""
    names = {
        "alice": {"mcp": ["alice@example.com"]},
        "bob": {"mcp": ["bob@example.com"]},
        "carol": {"mcp": ["carol@example.com"]},
    }
    return policy_yaml(names=names, doors={MCP_SERVER: "mcp"})


@pytest.fixture(scope="session")
def policies_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("policies")
    (d / "default.yaml").write_text(mcp_policy_yaml())
    return d


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    """`aiops lab up` in a thread: the simulated shop scraped by a real Prometheus, and the lab
    Kubernetes API; yields once the call graph shows in Prometheus."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.skip("the Debian package prometheus is not installed")
    state = tmp_path_factory.mktemp("lab")
    stop = threading.Event()
    thread = threading.Thread(
        target=run_lab, args=(state,), kwargs={"history_days": 0.1, "stop": stop}, daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        info = None
        while time.monotonic() < deadline:
            info = read_info(state)
            if info is not None and _has_edges(info.prometheus_url):
                break
            time.sleep(0.3)
        else:
            raise TimeoutError("the lab's Prometheus never showed the call graph")
        assert info is not None
        yield info
    finally:
        stop.set()
        thread.join(30)


def _has_edges(url: str) -> bool:
    try:
        body = httpx.get(url + "/api/v1/query", params={"query": EDGES}, timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(body.get("data", {}).get("result"))


def make_settings(
    *,
    temporal: str = "127.0.0.1:1",
    prometheus: str = "http://127.0.0.1:1",
    kubeconfig: str | None = None,
    policies: Path | None = None,
    write: bool = False,
    local_user: str | None = "alice",
) -> Settings:
    """`local_user` is who runs a stdio server: the holder of that person's key file."""
    keys = Path(KEYS.name)
    local_key = write_key(local_user, keys / local_user) if local_user else keys / "nobody"
    return Settings(
        temporal=TemporalSettings(address=temporal),
        prometheus=PrometheusSettings(url=prometheus, timeout_s=5),
        kubernetes=KubernetesSettings(kubeconfig=Path(kubeconfig) if kubeconfig else None),
        playbooks_dir=REPO / "playbooks",
        policies_dir=policies or REPO / "policies",
        mcp=McpSettings(enable_write_tools=write, tokens=dict(TOKENS)),
        signing=SigningSettings(
            cli_key=local_key, mcp_key=write_key(MCP_SERVER, keys / MCP_SERVER)
        ),
    )


@pytest.fixture(scope="session")
def lab_settings(lab: LabInfo, policies_dir: Path) -> Settings:
    return make_settings(
        prometheus=lab.prometheus_url, kubeconfig=lab.kubeconfig, policies=policies_dir
    )
