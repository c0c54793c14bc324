"""`aiops lab eval --keep DIR`: a run's state kept for a post-mortem never mixes with another's."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiops_lab.eval.lab_eval import EvalOptions, LabEvalError, run_eval

from aiops.config import Settings

SCENARIOS = Path(__file__).resolve().parents[2] / "lab" / "aiops_lab" / "scenarios"


@pytest.mark.parametrize("occupied", ["dir", "file"])
def test_keep_refuses_a_directory_in_use_before_starting_anything(
    tmp_path: Path, occupied: str
) -> None:
    keep = tmp_path / "kept"
    if occupied == "dir":
        keep.mkdir()
        (keep / "temporal.db").write_text("another run's")
    else:
        keep.write_text("a file")
    with pytest.raises(LabEvalError, match=r"--keep .*kept: not an empty directory"):
        run_eval(Settings(), EvalOptions(scenarios=SCENARIOS, keep=keep))
    # nothing of it was touched
    kept = keep / "temporal.db" if occupied == "dir" else keep
    assert kept.read_text() in ("another run's", "a file")
