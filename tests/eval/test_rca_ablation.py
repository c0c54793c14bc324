"""The ablation table runs over any case folder and lists every variant."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from aiops_lab.eval import rca_ablation
from test_rca_cases import write_case


def test_table_has_a_row_per_variant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_case(tmp_path, "alpha_cpu", seed=1)
    write_case(tmp_path, "beta_cpu", seed=2)
    parser = argparse.ArgumentParser()
    rca_ablation.configure_parser(parser)
    assert rca_ablation.run(parser.parse_args(["--data", str(tmp_path)])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + len(rca_ablation.variants())
    default_row = next(line for line in lines if "(= default)" in line)
    assert default_row.split()[-3:] == ["1.00", "1.00", "1.00"]
