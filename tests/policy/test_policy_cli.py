"""`aiops policy explain`: prints the decision with every reason; exit code says allowed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from aiops.policy import cli

from .builders import NOW, REPO

DEFAULT = str(REPO / "policies" / "default.yaml")


def explain(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    return cli.run(parser.parse_args(list(argv)))


def test_allowed_with_approval(capsys: pytest.CaptureFixture[str]) -> None:
    code = explain(
        "--policy",
        DEFAULT,
        "--action",
        "k8s.scale",
        "--namespace",
        "boutique",
        "--name",
        "cartservice",
        "--replicas",
        "4",
        "--current-replicas",
        "2",
        "--risk",
        "medium",
        "--label",
        "app=cartservice",
        "--identity",
        "bob",
        "--now",
        NOW.isoformat(),
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "decision: ALLOWED after 1 approval(s) from alice, bob, carol" in out
    assert "allowed by rule 'boutique-workloads'" in out
    assert "approval rule 'medium-risk-needs-one' applies" in out
    assert "bob may approve: yes" in out


def test_denied_lists_every_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code = explain(
        "--policy",
        DEFAULT,
        "--action",
        "k8s.scale",
        "--namespace",
        "kube-system",
        "--name",
        "coredns",
        "--replicas",
        "9",
        "--current-replicas",
        "2",
        "--kill-switch",
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "decision: DENIED" in out
    for words in (
        "kill switch is on",
        "'kube-system' is protected",
        "no allow rule permits",
        "2 -> 9 replicas is more than x2",
    ):
        assert words in out


def test_history_file_and_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "history.json"
    history.write_text(
        json.dumps(
            [
                {
                    "at": NOW.isoformat(),
                    "action": "k8s.rollout_restart",
                    "target": "Deployment/boutique/cartservice",
                    "namespace": "boutique",
                }
            ]
        )
    )
    code = explain(
        "--policy",
        DEFAULT,
        "--action",
        "k8s.rollout_restart",
        "--namespace",
        "boutique",
        "--name",
        "cartservice",
        "--label",
        "app=cart",
        "--history",
        str(history),
        "--now",
        NOW.isoformat(),
        "--json",
    )
    decision = json.loads(capsys.readouterr().out)
    assert code == 1
    assert decision["allowed"] is False
    assert any("cooldown" in r for r in decision["reasons"])


def test_plan_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "incident_id": "i",
                "playbook_id": "cordon-and-drain-node",
                "risk": "high",
                "steps": [{"action": "k8s.cordon", "args": {"node": "w1", "kind": "Node"}}],
            }
        )
    )
    assert explain("--policy", DEFAULT, "--plan", str(plan)) == 1  # node labels not given
    assert "needs the target's labels" in capsys.readouterr().out


def test_bad_policy_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("allow:\n  - {name: x, namespaces: [a], actions: [k8s.nuke]}\n")
    assert explain("--policy", str(bad), "--action", "k8s.cordon", "--name", "n") == 2
    assert f"{bad}:2: allow[0]: unknown action 'k8s.nuke'" in capsys.readouterr().out


def test_bad_plan_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert explain("--policy", DEFAULT, "--action", "k8s.scale", "--name", "x") == 2
    assert "needs --namespace" in capsys.readouterr().out
