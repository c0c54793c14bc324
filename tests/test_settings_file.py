"""The settings file through pydantic-settings' YAML source: env beats file beats defaults, and
every problem names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.config import ConfigError, load_settings


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "aiops.yaml"
    monkeypatch.setenv("AIOPS_CONFIG", str(path))
    return path


def test_env_beats_file_beats_defaults(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.write_text(
        "temporal: {address: file.example:7233, namespace: from-file}\n"
        "prometheus: {url: http://prom.file:9090}\n"
    )
    monkeypatch.setenv("AIOPS_TEMPORAL__ADDRESS", "env.example:7233")
    settings = load_settings()
    assert settings.temporal.address == "env.example:7233"  # env
    assert settings.temporal.namespace == "from-file"  # file, beside an env value of its section
    assert settings.prometheus.url == "http://prom.file:9090"  # file
    assert settings.temporal.task_queue == "aiops"  # default


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("temporal: [unclosed\n", "not valid YAML"),
        ("- a\n- b\n", "the top level must be a mapping"),
    ],
)
def test_a_broken_file_is_named(config: Path, text: str, words: str) -> None:
    config.write_text(text)
    with pytest.raises(ConfigError, match=words) as err:
        load_settings()
    assert str(config) in str(err.value)


def test_a_missing_file_is_an_error_not_ignored(config: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read it \(no such file\)") as err:
        load_settings()
    assert str(config) in str(err.value)


def test_a_bad_field_names_the_field_its_variable_and_the_file(config: Path) -> None:
    config.write_text("prometheus: {url: prometheus:9090}\ntemporal: {adress: x:1}\n")
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert "prometheus.url" in text and "AIOPS_PROMETHEUS__URL" in text and str(config) in text
    assert "temporal.adress" in text  # a misspelled setting is an error, not ignored
