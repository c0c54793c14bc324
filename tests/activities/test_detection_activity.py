"""The detect_anomalies activity: checkpoint files, cold starts, failures, settings errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

from aiops.activities.detection import (
    DETECT_ANOMALIES,
    KEEP_CHECKPOINTS,
    DetectAnomaliesInput,
    DetectAnomaliesResult,
    DetectionActivities,
)
from aiops.config import ConfigError, DetectionSettings, PrometheusSettings, Settings
from aiops.detect.catalog import BUILTIN_SIGNALS
from aiops.domain.models import Anomaly, Direction
from tests.servers import MetricsTarget, PrometheusServer, free_port, scraped, wait_until

GAUGE = {
    "name": "queue_depth",
    "query": "aiops_test_act_depth{$filter}",
    "entity_label": "job",
    "direction": "up",
    "unit": "items",
}


def settings(url: str, state_dir: Path, **detection: object) -> Settings:
    return Settings(
        state_dir=state_dir,
        prometheus=PrometheusSettings(url=url, timeout_s=2),
        detection=DetectionSettings(
            interval_s=1,
            prime_s=20,
            signals=[GAUGE],
            disabled=[s.name for s in BUILTIN_SIGNALS],
            **detection,  # type: ignore[arg-type]
        ),
    )


@pytest.fixture
def url(prometheus: PrometheusServer, metrics_target: MetricsTarget) -> str:
    metrics_target.values["aiops_test_act_depth"] = 5.0
    wait_until(lambda: scraped(prometheus.url, "aiops_test_act_depth"), 15, "a scrape")
    return prometheus.url


def test_passes_hand_over_a_small_reference_to_a_state_file(url: str, tmp_path: Path) -> None:
    env = ActivityEnvironment()
    acts = DetectionActivities(settings(url, tmp_path, checkpoint_every_s=0))  # a file a pass
    assert acts.detect_anomalies.__temporal_activity_definition.name == DETECT_ANOMALIES  # type: ignore[attr-defined]
    t0 = datetime.now(UTC) + timedelta(seconds=3)  # grid time (2 s behind) after the scrape
    first: DetectAnomaliesResult = env.run(acts.detect_anomalies, DetectAnomaliesInput(at=t0))
    assert first.cold_start and first.checkpoint_note is None
    [report] = first.signals
    assert (report.signal, report.status, report.series, report.cold) == (
        "queue_depth",
        "ok",
        1,
        True,
    )
    path = tmp_path / "detection" / first.checkpoint.file
    assert path.is_file() and path.stat().st_size == first.checkpoint.size_bytes
    assert first.checkpoint.pass_id == first.pass_id == path.stem
    assert len(first.model_dump_json()) < 2_000  # the history carries a reference, not state

    # Another worker (no memory of the first) continues from the file.
    second = env.run(
        DetectionActivities(settings(url, tmp_path)).detect_anomalies,
        DetectAnomaliesInput(at=t0 + timedelta(seconds=1), checkpoint=first.checkpoint),
    )
    assert not second.cold_start
    assert second.signals[0].steps == 1 and not second.signals[0].cold

    # Running the same pass again (a retry) is a no-op on the same grid time.
    again = env.run(
        acts.detect_anomalies,
        DetectAnomaliesInput(at=t0 + timedelta(seconds=1), checkpoint=second.checkpoint),
    )
    assert again.signals[0].status == "up_to_date"

    # The file is gone (another host, a wiped volume): prime again from history, and say so.
    path = tmp_path / "detection" / again.checkpoint.file
    path.unlink()
    third = env.run(
        acts.detect_anomalies,
        DetectAnomaliesInput(
            at=t0 + timedelta(seconds=2),
            checkpoint=again.checkpoint.model_copy(update={"sha256": "0" * 64}),
        ),
    )
    assert third.cold_start
    assert third.checkpoint_note is not None and "primed from history" in third.checkpoint_note

    ref = third.checkpoint
    for k in range(3, 8):
        ref = env.run(
            acts.detect_anomalies,
            DetectAnomaliesInput(at=t0 + timedelta(seconds=k), checkpoint=ref),
        ).checkpoint
    assert len(list((tmp_path / "detection" / "default").glob("*.npz"))) == KEEP_CHECKPOINTS


def test_the_state_file_is_written_every_interval_and_a_restart_catches_up(
    url: str, tmp_path: Path
) -> None:
    env = ActivityEnvironment()
    acts = DetectionActivities(settings(url, tmp_path, checkpoint_every_s=3))
    t0 = datetime.now(UTC) + timedelta(seconds=3)
    first = env.run(acts.detect_anomalies, DetectAnomaliesInput(at=t0))  # cold: written
    ref, refs = first.checkpoint, []
    for k in (1, 2):
        out = env.run(
            acts.detect_anomalies,
            DetectAnomaliesInput(at=t0 + timedelta(seconds=k), checkpoint=ref),
        )
        assert out.signals[0].steps == 1 and not out.cold_start  # carried on in memory
        ref = out.checkpoint
        refs.append(ref)
    # Within the interval no file is written: the reference is the last file's, with this
    # pass's id, time and series.
    assert {(r.file, r.sha256) for r in refs} == {(first.checkpoint.file, first.checkpoint.sha256)}
    assert len({first.checkpoint.pass_id, *(r.pass_id for r in refs)}) == 3
    assert refs[-1].at > first.checkpoint.at
    assert len(list((tmp_path / "detection" / "default").glob("*.npz"))) == 1

    # The worker restarts (or another one takes the stream): it reads the last file and asks
    # Prometheus for the grid times since, the two passes the crash lost included.
    restarted = DetectionActivities(settings(url, tmp_path, checkpoint_every_s=3))
    after = env.run(
        restarted.detect_anomalies,
        DetectAnomaliesInput(at=t0 + timedelta(seconds=3), checkpoint=refs[-1]),
    )
    assert not after.cold_start and after.checkpoint_note is None
    assert after.signals[0].status == "ok" and after.signals[0].steps == 3
    assert after.checkpoint.file != first.checkpoint.file  # read from a file: written anew

    # The first worker writes again once its last file is the interval old.
    later = env.run(
        acts.detect_anomalies,
        DetectAnomaliesInput(at=t0 + timedelta(seconds=4), checkpoint=refs[-1]),
    )
    assert later.signals[0].steps == 2 and later.checkpoint.pass_id == later.pass_id
    assert (tmp_path / "detection" / later.checkpoint.file).is_file()


def test_prometheus_down_fails_every_signal_but_not_the_pass(tmp_path: Path) -> None:
    acts = DetectionActivities(settings(f"http://127.0.0.1:{free_port()}", tmp_path))
    out = ActivityEnvironment().run(acts.detect_anomalies, DetectAnomaliesInput())
    assert out.anomalies == []
    [report] = out.signals
    assert report.status == "failed" and "unreachable" in (report.error or "")
    # Nothing was scored, so the next pass asks for the same history again.
    nxt = ActivityEnvironment().run(
        acts.detect_anomalies, DetectAnomaliesInput(checkpoint=out.checkpoint)
    )
    assert nxt.signals[0].cold


def test_bad_detection_settings_name_the_setting(tmp_path: Path) -> None:
    bad = dict(GAUGE, query="rate(x[$window]")
    with pytest.raises(ConfigError, match=r"detection\.signals\[0\].*unbalanced"):
        DetectionActivities(
            Settings(state_dir=tmp_path, detection=DetectionSettings(signals=[bad]))
        )
    with pytest.raises(ConfigError, match=r"detection\.disabled.*'nope'"):
        DetectionActivities(
            Settings(state_dir=tmp_path, detection=DetectionSettings(disabled=["nope"]))
        )


def test_minimum_changes_are_overridden_per_signal_in_settings(tmp_path: Path) -> None:
    def acts(min_change: dict[str, dict[str, float]]) -> DetectionActivities:
        return DetectionActivities(
            Settings(state_dir=tmp_path, detection=DetectionSettings(min_change=min_change))
        )

    signals = {
        s.name: s
        for s in acts(
            {"memory_vs_limit": {"min_delta": 0.03}, "latency_p99": {"min_ratio": 1.2}}
        ).signals
    }
    assert signals["memory_vs_limit"].min_delta == 0.03
    assert signals["latency_p99"].min_ratio == 1.2
    assert (
        signals["latency_p99"].min_delta
        == next(s for s in BUILTIN_SIGNALS if s.name == "latency_p99").min_delta
    )  # the rest is kept
    with pytest.raises(ConfigError, match=r"detection\.min_change\.nope: unknown signal"):
        acts({"nope": {"min_delta": 1.0}})
    with pytest.raises(ConfigError, match=r"min_change\.error_ratio: unknown keys \['delta'\]"):
        acts({"error_ratio": {"delta": 0.02}})
    with pytest.raises(ConfigError, match=r"min_change\.request_rate: min_ratio"):
        acts({"request_rate": {"min_ratio": 0.5}})


def test_the_result_survives_temporals_data_converter(url: str, tmp_path: Path) -> None:
    out = ActivityEnvironment().run(
        DetectionActivities(settings(url, tmp_path)).detect_anomalies, DetectAnomaliesInput()
    )
    now = datetime.now(UTC)
    anomaly = Anomaly(
        signal="queue_depth",
        series={"job": "test"},
        query="q",
        start=now,
        score=0.9,
        direction=Direction.UP,
        value=9.0,
        baseline=5.0,
        evidence_window=(now - timedelta(minutes=5), now),
    )
    out = out.model_copy(update={"anomalies": [anomaly]})
    conv = pydantic_data_converter.payload_converter
    [back] = conv.from_payloads(conv.to_payloads([out]), [DetectAnomaliesResult])
    assert back == out


def test_the_command_prints_one_json_result_per_pass(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import json

    from aiops.activities.detection import configure_parser, run

    monkeypatch.delenv("AIOPS_CONFIG", raising=False)
    monkeypatch.setenv("AIOPS_PROMETHEUS__URL", url)
    monkeypatch.setenv("AIOPS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AIOPS_DETECTION__INTERVAL_S", "1")
    monkeypatch.setenv("AIOPS_DETECTION__PRIME_S", "10")
    monkeypatch.setenv("AIOPS_DETECTION__SIGNALS", json.dumps([GAUGE]))
    p = argparse.ArgumentParser()
    configure_parser(p)
    assert run(p.parse_args(["--json"])) == 0
    # (`aiops` sends logs to stderr; unconfigured structlog prints them here too)
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith('{"')]
    out = DetectAnomaliesResult.model_validate_json(line)
    # this Prometheus has the user's gauge and no request metrics: discovery leaves those out
    assert "queue_depth" in {s.signal for s in out.signals}
    assert "error_ratio" not in {s.signal for s in out.signals}
    assert out.checkpoint.stream == "cli"

    monkeypatch.setenv("AIOPS_PROMETHEUS__URL", f"http://127.0.0.1:{free_port()}")
    assert run(p.parse_args([])) == 1  # every signal failed: said on stdout, exit code 1
    assert "FAILED" in capsys.readouterr().out
