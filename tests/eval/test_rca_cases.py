"""`aiops eval rca`: the RCAEval loader's errors and the command's output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from aiops_lab.eval import rca as rca_eval
from aiops_lab.eval.rca_cases import CaseError, load_cases

INJECT = 1_700_001_800


def write_case(
    root: Path,
    folder: str,
    rep: str = "1",
    *,
    culprit: str | None = None,
    seed: int = 0,
    burn: bool = True,
) -> Path:
    """A small healthy 3-service case whose `culprit` (default: the folder's service) burns CPU
    (unless `burn` is False: then no metric departs)."""
    service = folder.split("_", 1)[0]
    culprit = culprit or service
    rng = np.random.default_rng(seed)
    times = INJECT - 1800 + 60 * np.arange(40)
    cols = [f"{s}_{m}" for s in ("alpha", "beta", "gamma") for m in ("cpu", "lat_90")]
    data = 10 + 0.2 * rng.standard_normal((40, len(cols)))
    j = cols.index(f"{culprit}_cpu")
    if burn:
        data[30:34, j] *= 8
    d = root / folder / rep
    d.mkdir(parents=True)
    lines = ["time," + ",".join(cols)]
    lines += [
        f"{int(t)}," + ",".join(f"{v:.4f}" for v in row)
        for t, row in zip(times, data, strict=False)
    ]
    (d / "metrics.csv").write_text("\n".join(lines) + "\n")
    (d / "inject_time.txt").write_text(f"{INJECT}\n")
    return d


def write_edges(case: Path, delayed: str, seed: int = 0) -> None:
    """alpha calls beta and gamma, beta calls gamma; every call to `delayed` waits 200 ms more
    from the injection on, while `delayed` spends no more time (15-s bins, as edges.csv has)."""
    rng = np.random.default_rng(seed)
    lines = [
        "time,client,server,calls,client_latency_p50,client_latency_p90,client_latency_p99,"
        "server_latency_p50,server_latency_p90,server_latency_p99"
    ]
    for t in range(INJECT - 600, INJECT + 300, 15):
        for client, server in (("alpha", "beta"), ("alpha", "gamma"), ("beta", "gamma")):
            served = 0.002 * (1 + 0.05 * rng.standard_normal())
            waited = served + 0.005 * (1 + 0.05 * rng.standard_normal())
            if server == delayed and t >= INJECT:
                waited += 0.2
            q = f"{waited:.6f},{waited * 1.5:.6f},{waited * 2:.6f}"
            s = f"{served:.6f},{served * 1.5:.6f},{served * 2:.6f}"
            lines.append(f"{t},{client},{server},40,{q},{s}")
    (case / "edges.csv").write_text("\n".join(lines) + "\n")


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    rca_eval.configure_parser(parser)
    return rca_eval.run(parser.parse_args(argv))


def test_plain_output_scores_cases_and_ends_with_ac1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path, "alpha_cpu", "1", seed=1)
    write_case(tmp_path, "alpha_cpu", "2", seed=2)
    write_case(tmp_path, "beta_mem", "1", seed=3)
    # A case the ranking gets wrong: the label says gamma, the data says alpha.
    write_case(tmp_path, "gamma_cpu", "1", culprit="alpha", seed=4)

    assert run_cli(["--data", str(tmp_path), "--cases"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "RCA AC@1: 0.750"
    overall = next(line for line in out if line.startswith("overall"))
    # n, AC@1 ... and the random floor for 3 services: 1/3.
    assert overall.split()[1:3] == ["4", "0.75"]
    assert "0.33" in overall
    assert any(line.startswith("gamma_cpu/1") and " alpha" in line for line in out)


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_case(tmp_path, "beta_cpu")
    assert run_cli(["--data", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["overall"]["ac1"] == 1.0
    assert doc["overall"]["random_ac1"] == pytest.approx(1 / 3)
    assert doc["overall"]["random_avg5"] == pytest.approx((1 / 3 + 2 / 3 + 1 + 1 + 1) / 5)
    assert set(doc["by_fault"]) == {"cpu"}
    case = doc["cases"][0]
    assert (case["case"], case["position"], case["predicted_type"]) == ("beta_cpu/1", 1, "cpu")
    assert case["expected_type"] == "cpu"


def test_error_exit_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = write_case(tmp_path, "alpha_cpu")
    (d / "inject_time.txt").unlink()
    assert run_cli(["--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "inject_time.txt" in err
    assert "missing" in err


def corrupt_line(path: Path, lineno: int, new: str) -> None:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = new
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda p: corrupt_line(p, 5, "1700000040,1,2,3"),
            r"metrics.csv:5: 4 fields, the header has 7",
        ),
        (
            lambda p: corrupt_line(p, 7, "1700000400,1,2,oops,4,5,6"),
            r"metrics.csv:7: column 'beta_cpu' has 'oops', not a number",
        ),
        (
            lambda p: corrupt_line(p, 4, "1700000000,1,2,3,4,5,6"),
            r"metrics.csv:4: time 1700000000 does not come after",
        ),
        (
            lambda p: corrupt_line(
                p, 1, "ts,alpha_cpu,alpha_lat_90,beta_cpu,beta_lat_90,gamma_cpu,x"
            ),
            r"metrics.csv:1: first column must be 'time'",
        ),
        (
            lambda p: corrupt_line(
                p, 1, "time,alpha_cpu,alpha_lat_90,beta_cpu,beta_lat_90,gamma_cpu,latency"
            ),
            r"metrics.csv:1: column 7 'latency' is not named <service>_<metric>",
        ),
        (lambda p: corrupt_line(p, 3, ",1,2,3,4,5,6"), r"metrics.csv:3: the time is empty"),
        (lambda p: p.write_text(""), r"metrics.csv:1: empty file"),
        (lambda p: p.unlink(), r"metrics.csv: missing"),
    ],
)
def test_malformed_metrics_name_file_and_line(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    d = write_case(tmp_path, "alpha_cpu")
    edit(d / "metrics.csv")
    with pytest.raises(CaseError, match=message) as info:
        load_cases(tmp_path)
    assert str(d / "metrics.csv") in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("soon\n", r"inject_time.txt:1: 'soon' is not a number"),
        ("\n\n", r"inject_time.txt:1: empty"),
        ("1700001800\n1700001900\n", r"inject_time.txt:2: one value expected"),
        ("-5\n", r"inject_time.txt:1: '-5' is not a valid unix time"),
    ],
)
def test_malformed_inject_time_names_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    d = write_case(tmp_path, "alpha_cpu")
    (d / "inject_time.txt").write_text(content)
    with pytest.raises(CaseError, match=message):
        load_cases(tmp_path)


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="not a directory"):
        load_cases(tmp_path / "absent")
    with pytest.raises(CaseError, match="no case folders"):
        load_cases(tmp_path)
    (tmp_path / "nounderscore" / "1").mkdir(parents=True)
    with pytest.raises(CaseError, match="nounderscore: case folder names must be"):
        load_cases(tmp_path)


def test_a_case_that_cannot_be_ranked_is_a_miss_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path, "alpha_cpu", seed=1)
    d = write_case(tmp_path, "beta_cpu", seed=2)
    # Only 2 rows before the injection: no baseline.
    (d / "inject_time.txt").write_text(f"{INJECT - 1800 + 120}\n")
    assert run_cli(["--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "RCA AC@1: 0.500"
    assert "1 case(s) could not be ranked and count as misses:" in out
    assert f"beta_cpu/1: {d}: only 2 row(s) before the anomaly time" in out
    assert "at least 3 are needed for a baseline" in out


def test_a_case_with_unreadable_files_is_a_miss_and_the_rest_is_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path, "alpha_cpu", seed=1)
    d = write_case(tmp_path, "gamma_cpu", seed=3)
    (d / "inject_time.txt").write_text("soon\n")
    assert run_cli(["--data", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["overall"]["n"], doc["overall"]["ac1"], doc["overall"]["unranked"]) == (2, 0.5, 1)
    broken = next(c for c in doc["cases"] if c["case"] == "gamma_cpu/1")
    assert broken["position"] is None
    assert "inject_time.txt:1: 'soon' is not a number" in broken["error"]


def test_cases_json_groups_by_system(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_case(tmp_path, "alpha_cpu", seed=5)
    write_case(tmp_path, "beta_cpu", seed=6)
    records = [{"case": "alpha_cpu/1", "system": "shop"}, {"case": "beta_cpu/1", "system": "bank"}]
    (tmp_path / "cases.json").write_text(json.dumps(records))
    assert run_cli(["--data", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["by_system"]) == {"shop", "bank"}
    assert doc["by_system"]["shop"]["n"] == 1


def test_broken_cases_json_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path, "alpha_cpu")
    (tmp_path / "cases.json").write_text('[\n  {"case": "alpha_cpu/1",\n')
    assert run_cli(["--data", str(tmp_path)]) == 2
    assert f"{tmp_path / 'cases.json'}:3: not valid JSON" in capsys.readouterr().err


def test_call_graph_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_case(tmp_path / "cases", "beta_cpu")
    graph = tmp_path / "graph.csv"
    graph.write_text("# caller,callee\nalpha,beta\n\nalpha , gamma  # trailing comment\n")
    assert run_cli(["--data", str(tmp_path / "cases"), "--graph", str(graph), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["graph"] == str(graph)

    graph.write_text("alpha,beta\nalpha beta\n")
    assert run_cli(["--data", str(tmp_path / "cases"), "--graph", str(graph)]) == 2
    assert f"{graph}:2: expected 'caller,callee'" in capsys.readouterr().err


def test_edges_are_read_and_scored_beside_the_run_without_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # gamma's network is slow: its metrics stay quiet, every edge into it slows.
    write_edges(write_case(tmp_path, "gamma_network-delay", seed=7, burn=False), "gamma")
    write_edges(write_case(tmp_path, "alpha_cpu", seed=8), "none", seed=1)
    assert run_cli(["--data", str(tmp_path), "--cases"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert "with the service graph (edges.csv)" in lines[0]
    assert "no edges" in lines[1]
    overall = next(line for line in lines if line.startswith("overall")).split()
    # n, AC@1 AC@3 Avg@5 with edges, type accuracy, the random floor, then without edges.
    assert overall[1:3] == ["2", "1.00"]
    assert overall[4] == "1.00"  # network_latency as the fault type of gamma, cpu of alpha
    assert overall[9] == "0.50"  # without the edges gamma is a guess
    case = next(line for line in lines if line.startswith("gamma_network-delay/1"))
    assert case.split()[1:4] == ["1", "2", "network_latency"]  # rank, rank without edges, type
    assert "rank with edges minus without, per case: mean" in out
    assert lines[-1] == "RCA AC@1: 1.000"

    assert run_cli(["--data", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["edges"] is True
    assert doc["overall"]["ac1"] == 1.0
    assert doc["without_edges"]["overall"]["ac1"] == 0.5
    gamma = next(c for c in doc["cases"] if c["case"] == "gamma_network-delay/1")
    assert gamma["predicted_type"] == "network_latency"
    assert gamma["edges"] == 3
    assert any(e.startswith("alpha → gamma: client p50 ") for e in gamma["evidence"])
    assert doc["rank_change"]["alpha_cpu/1"] == 0

    assert run_cli(["--data", str(tmp_path), "--json", "--no-edges"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["edges"], doc["overall"]["ac1"], "without_edges" in doc) == (False, 0.5, False)


def test_malformed_edges_name_file_and_line(tmp_path: Path) -> None:
    d = write_case(tmp_path, "alpha_cpu")
    write_edges(d, "beta")
    corrupt_line(d / "edges.csv", 4, f"{INJECT},alpha,beta,40,fast,0.01,0.01,0.001,0.001,0.001")
    with pytest.raises(CaseError, match=r"edges.csv:4: column 'client_latency_p50' has 'fast'"):
        load_cases(tmp_path)
    (d / "edges.csv").write_text("time,client,server,calls\n")
    with pytest.raises(CaseError, match=r"edges.csv:1: missing column\(s\) client_latency_p50"):
        load_cases(tmp_path)
