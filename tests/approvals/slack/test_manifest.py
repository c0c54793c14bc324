"""`aiops slack manifest` prints a manifest Slack accepts for the chosen mode."""

from __future__ import annotations

import argparse

import pytest
import yaml

from aiops.approvals.slack import manifest


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    manifest.configure_parser(parser)
    code = manifest.run(parser.parse_args(list(argv)))
    return code, capsys.readouterr().out


def test_socket_mode_needs_no_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys)
    doc = yaml.safe_load(out)
    assert code == 0
    assert doc["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in doc["settings"]["interactivity"]
    assert "chat:write" in doc["oauth_config"]["scopes"]["bot"]
    assert "connections:write" in out


def test_http_mode_points_slack_at_the_interactivity_endpoint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = run(capsys, "--mode", "http", "--url", "https://aiops.example.com/")
    assert code == 0
    settings = yaml.safe_load(out)["settings"]
    assert (
        settings["interactivity"]["request_url"] == "https://aiops.example.com/slack/interactions"
    )
    assert settings["socket_mode_enabled"] is False
    code, out = run(capsys, "--mode", "http")
    assert code == 2 and "needs --url" in out
