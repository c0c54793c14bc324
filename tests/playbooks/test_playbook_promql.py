"""Every PromQL a shipped playbook renders is valid PromQL (checked by promtool, offline)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aiops.domain import FaultType
from aiops.playbooks import Observed, load_playbooks, plan_remediation

from .builders import PLAYBOOKS, report

PROMTOOL = shutil.which("promtool")


def rendered_queries() -> list[tuple[str, str]]:
    books = load_playbooks(PLAYBOOKS)
    out: list[tuple[str, str]] = []
    for fault in FaultType:
        kind = "Node" if fault is FaultType.NODE else "Deployment"
        target = "node-2" if fault is FaultType.NODE else "cartservice"
        for book in books.playbooks.values():
            if fault not in book.matches.faults:
                continue
            planned = plan_remediation(
                report(fault, target=target, kind=kind),
                [book],
                Observed(replicas=3, pod="cartservice-7d9-abcde"),
            )
            plan = planned.plan
            assert plan.playbook_id == book.id, plan.rationale
            assert plan.verification is not None
            out.append((f"{book.id}-verify", plan.verification.query))
            out += [
                (f"{book.id}-pre{i}", c.promql)
                for i, c in enumerate(planned.preconditions)
                if c.promql
            ]
    return out


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")
def test_rendered_queries_parse(tmp_path: Path) -> None:
    queries = rendered_queries()
    assert len({name.split("-pre")[0].removesuffix("-verify") for name, _ in queries}) == 5
    rules = {
        "groups": [
            {
                "name": "playbooks",
                "rules": [
                    {"record": f"aiops:check:{i}", "expr": q} for i, (_, q) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
