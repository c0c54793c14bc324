"""The policy the tools explain is the one on disk now: an edit shows at the next call, and a
broken file is an actionable error, not a stale answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastmcp.exceptions import ToolError

from aiops.config import Settings
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
