"""Leave-one-system-out: every system is scored with constants chosen on the others."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from aiops_lab.eval import rca_cv
from test_rca_cases import write_case, write_edges


def test_each_system_is_held_out_once_and_ties_keep_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop, bank = tmp_path / "shop", tmp_path / "bank"
    write_edges(write_case(shop, "gamma_network-delay", seed=7, burn=False), "gamma")
    write_case(shop, "alpha_cpu", seed=8)
    write_case(bank, "beta_cpu", seed=9)
    records = [{"case": "gamma_network-delay/1", "system": "shop-a"}]
    (shop / "cases.json").write_text(json.dumps(records))
    parser = argparse.ArgumentParser()
    rca_cv.configure_parser(parser)
    assert rca_cv.run(parser.parse_args(["--data", str(shop), "--data", str(bank)])) == 0
    lines = capsys.readouterr().out.splitlines()
    held_out = [line.split()[0] for line in lines[1:4]]
    # cases.json names one case's system; the others take their folder's name.
    assert held_out == ["bank", "shop", "shop-a"]
    assert all(line.endswith(rca_cv.DEFAULT[0]) for line in lines[1:4])
    assert lines[-2].split()[:3] == ["cross-validated", "3", "1.00"]
    assert lines[-1].split()[:4] == ["full", "(default)", "3", "1.00"]
