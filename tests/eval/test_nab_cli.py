"""`aiops eval nab`: output format, the shipped detector's score, and bad input."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pytest
from aiops_lab.eval import nab


def nab_dev() -> Path:
    env = os.environ.get("AIOPS_DATASETS")
    root = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
    p = root / "nab-dev"
    if not (p / "labels" / "combined_windows.json").is_file():
        pytest.skip(f"NAB dev data not found at {p} (set AIOPS_DATASETS)")
    return p


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    nab.configure_parser(p)
    return nab.run(p.parse_args(argv))


def tiny_corpus(tmp_path: Path, rows: list[str] | None = None) -> Path:
    root = tmp_path / "nab"
    (root / "data" / "cat").mkdir(parents=True)
    (root / "labels").mkdir()
    lines = rows or [
        f"2020-01-01 {h:02d}:{m:02d}:00,{10 + (m % 3)}" for h in range(24) for m in range(0, 60, 5)
    ]
    (root / "data" / "cat" / "a.csv").write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    (root / "labels" / "combined_windows.json").write_text(
        json.dumps({"cat/a.csv": [["2020-01-01 18:00:00.000000", "2020-01-01 19:00:00.000000"]]})
    )
    return root


def test_full_dev_corpus_meets_the_target_with_the_shipped_threshold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = nab_dev()
    assert run(["--data", str(root)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("NAB standard: ")
    assert float(last.split(": ")[1]) >= 70.0


def test_json_output_has_all_profiles_and_both_thresholds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tiny_corpus(tmp_path)
    assert run(["--data", str(root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["profiles"]) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    std = doc["profiles"]["standard"]
    assert std["optimised"]["score"] >= std["shipped"]["score"] - 1e-9
    assert doc["windows"] == 1


def test_malformed_value_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = ["2020-01-01 00:00:00,1", "2020-01-01 00:05:00,oops", "2020-01-01 00:10:00,3"]
    root = tiny_corpus(tmp_path, rows)
    assert run(["--data", str(root)]) == 2
    out = capsys.readouterr().out
    assert "a.csv:3" in out
    assert "oops" in out


def test_bad_timestamp_and_missing_file_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tiny_corpus(tmp_path, ["2020-01-01 00:00:00,1", "yesterday,2"])
    assert run(["--data", str(root)]) == 2
    assert "a.csv:3" in capsys.readouterr().out
    (root / "data" / "cat" / "a.csv").unlink()
    assert run(["--data", str(root)]) == 2
    out = capsys.readouterr().out
    assert "a.csv" in out
    assert "missing" in out


def test_malformed_windows_json_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tiny_corpus(tmp_path)
    (root / "labels" / "combined_windows.json").write_text('{\n  "cat/a.csv": [\n    [1, ]\n}')
    assert run(["--data", str(root)]) == 2
    out = capsys.readouterr().out
    assert "combined_windows.json:3" in out


def test_windows_option_and_unlabelled_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tiny_corpus(tmp_path)
    shutil.copy(root / "data" / "cat" / "a.csv", root / "data" / "cat" / "b.csv")
    assert run(["--data", str(root)]) == 2
    assert "cat/b.csv" in capsys.readouterr().out
    other = tmp_path / "w.json"
    other.write_text(json.dumps({"cat/a.csv": [], "cat/b.csv": []}))
    assert run(["--data", str(root), "--windows", str(other)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("NAB standard: ")
