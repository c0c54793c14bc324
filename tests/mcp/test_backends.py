"""The policy the tools explain is the one on disk now: an edit shows at the next call, and a
broken file is an actionable error, not a stale answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiops_lab.kubeapi.server import LabApiServer, write_kubeconfig
from fastmcp.exceptions import ToolError
from temporalio.testing import WorkflowEnvironment

from aiops.config import KubernetesSettings, Settings, TemporalSettings
from aiops.mcp.backends import Backends


def test_policy_edits_show_at_once_and_broken_files_are_named(tmp_path: Path) -> None:
    policy = tmp_path / "default.yaml"
    policy.write_text("description: first\n")
    b = Backends(Settings(policies_dir=tmp_path))
    assert b.policy().description == "first"
    assert b.policy() is b.policy()  # unchanged files are not parsed again
    policy.write_text("description: second, edited\n")
    assert b.policy().description == "second, edited"
    policy.write_text("allow: [{name: x, actions: [k8s.explode]}]\n")
    with pytest.raises(ToolError, match=r"the policy could not be loaded: .*default\.yaml"):
        b.policy()


async def test_warm_up_opens_what_is_up_and_leaves_what_is_down_to_the_tools(
    temporal_env: WorkflowEnvironment,
    lab_api: LabApiServer,
    tmp_path: Path,
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", lab_api.url)
    up = Backends(
        Settings(
            temporal=TemporalSettings(
                address=temporal_env.client.service_client.config.target_host
            ),
            kubernetes=KubernetesSettings(kubeconfig=kubeconfig),
            policies_dir=tmp_path / "missing-policies",
        )
    )
    await up.warm_up()
    # The first tool call finds the connections open (no second connect, no kubeconfig load).
    assert up._client is not None and up._kube is not None

    down = Backends(
        Settings(
            temporal=TemporalSettings(address="127.0.0.1:1"),
            kubernetes=KubernetesSettings(kubeconfig=tmp_path / "no-such-kubeconfig"),
        )
    )
    await down.warm_up()  # nothing raises: the server keeps serving
    with pytest.raises(ToolError, match=r"kubeconfig|Kubernetes"):
        down.kube()
    with pytest.raises(ToolError, match="Temporal"):
        await down.temporal()
