"""Playbook files: the shipped ones load; bad ones are refused with file, line and field."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from aiops.playbooks import LoadError, load_playbook, load_playbooks
from aiops.playbooks import cli as playbooks_cli

from .builders import PLAYBOOKS

GOOD = """\
id: {id}
description: test playbook
risk: low
matches:
  faults: [memory]
parameters:
  replicas: {{type: int, min: 1, max: 10, default: 2}}
steps:
  - action: k8s.scale
    args:
      namespace: "{{{{ target.namespace }}}}"
      name: "{{{{ target.name }}}}"
      replicas: "{{{{ params.replicas }}}}"
verification:
  query: up{{job="{{{{ target.name }}}}"}}
  hold_for: 1m
  timeout: 5m
"""


def write(tmp_path: Path, text: str, name: str = "test-book") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def errors_of(path: Path) -> list:
    with pytest.raises(LoadError) as info:
        load_playbook(path)
    for error in info.value.errors:
        assert error.file == str(path)
    return info.value.errors


def good(tmp_path: Path, old: str = "", new: str = "") -> Path:
    text = GOOD.format(id="test-book")
    if old:
        assert old in text
        text = text.replace(old, new)
    return write(tmp_path, text)


def test_shipped_playbooks_load() -> None:
    books = load_playbooks(PLAYBOOKS)
    assert sorted(books.playbooks) == [
        "cordon-and-drain-node",
        "delete-pod",
        "restart-deployment",
        "rollback-deployment",
        "scale-deployment",
    ]
    for path in PLAYBOOKS.glob("*.yaml"):
        assert load_playbook(path).id == path.stem


def test_the_template_playbook_is_valid(tmp_path: Path) -> None:
    assert load_playbook(good(tmp_path)).id == "test-book"


def test_invalid_yaml(tmp_path: Path) -> None:
    (err,) = errors_of(good(tmp_path, "  faults: [memory]", "  faults: [memory"))
    assert err.line is not None
    assert err.line >= 5
    assert "invalid YAML" in err.reason


def test_unknown_action(tmp_path: Path) -> None:
    (err,) = errors_of(good(tmp_path, "action: k8s.scale", "action: k8s.exec"))
    assert (err.line, err.field) == (9, "steps[0]")
    assert "unknown action 'k8s.exec'" in err.reason
    assert "k8s.rollout_restart" in err.reason


def test_unbounded_parameter(tmp_path: Path) -> None:
    (err,) = errors_of(good(tmp_path, "min: 1, max: 10, ", ""))
    assert (err.line, err.field) == (7, "parameters.replicas")
    assert "unbounded parameter" in err.reason


def test_unbounded_string_parameter(tmp_path: Path) -> None:
    path = good(
        tmp_path,
        "  replicas: {type: int, min: 1, max: 10, default: 2}",
        "  replicas: {type: int, min: 1, max: 10, default: 2}\n  mode: {type: str, default: fast}",
    )
    (err,) = errors_of(path)
    assert (err.line, err.field) == (8, "parameters.mode")
    assert "needs a list of choices" in err.reason


def test_template_naming_a_missing_field(tmp_path: Path) -> None:
    (err,) = errors_of(good(tmp_path, "{{ params.replicas }}", "{{ params.replica }}"))
    assert (err.line, err.field) == (13, "steps[0].args.replicas")
    assert "missing field 'params.replica'" in err.reason


def test_template_in_the_verification_query(tmp_path: Path) -> None:
    (err,) = errors_of(good(tmp_path, 'up{job="{{ target.name }}"}', 'up{job="{{ target.pod }}"}'))
    assert (err.line, err.field) == (15, "verification.query")
    assert "missing field 'target.pod'" in err.reason


@pytest.mark.parametrize(
    "expr",
    [
        "{{ __import__('os').system('id') }}",
        "{{ target.name | upper }}",
        "{{ target['name'] }}",
        "{{ params.replicas * 2 }}",
        "{{ target.name }",
    ],
)
def test_templates_cannot_run_code(tmp_path: Path, expr: str) -> None:
    errors = errors_of(
        good(tmp_path, '"{{ target.name }}"\n      replicas', f'"{expr}"\n      replicas')
    )
    assert any(e.field == "steps[0].args.name" for e in errors), [str(e) for e in errors]


def test_argument_types_are_checked(tmp_path: Path) -> None:
    (err,) = errors_of(good(tmp_path, '"{{ params.replicas }}"', '"{{ target.name }}"'))
    assert err.field == "steps[0].args.replicas"
    assert "must be an integer" in err.reason


def test_missing_and_extra_arguments(tmp_path: Path) -> None:
    (err,) = errors_of(good(tmp_path, '      replicas: "{{ params.replicas }}"\n', ""))
    assert "k8s.scale needs argument(s): replicas" in err.reason
    (err,) = errors_of(
        good(
            tmp_path,
            '      replicas: "{{ params.replicas }}"\n',
            "      replicas: 2\n      force: true\n",
        )
    )
    assert "takes no argument 'force'" in err.reason


def test_id_must_match_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.format(id="other-book"))
    (err,) = errors_of(path)
    assert (err.line, err.field) == (1, "id")
    assert "must equal the file name 'test-book'" in err.reason


@pytest.mark.parametrize(
    ("bad_id", "words"), [("Restart_It", "kebab-case"), ("escalate", "built in")]
)
def test_bad_ids(tmp_path: Path, bad_id: str, words: str) -> None:
    (err,) = errors_of(write(tmp_path, GOOD.format(id=bad_id), name=bad_id))
    assert words in err.reason


def test_unknown_field_and_fault(tmp_path: Path) -> None:
    errors = errors_of(good(tmp_path, "  faults: [memory]", "  faults: [memroy]\n  colour: red"))
    fields = {(e.line, e.field) for e in errors}
    assert (5, "matches.faults[0]") in fields
    assert (6, "matches.colour") in fields


def test_verification_window_longer_than_timeout(tmp_path: Path) -> None:
    (err,) = errors_of(good(tmp_path, "hold_for: 1m", "hold_for: 10m"))
    assert "longer than timeout" in err.reason
    assert err.field == "verification"


def test_duplicate_key(tmp_path: Path) -> None:
    (err,) = errors_of(good(tmp_path, "risk: low", "risk: low\nrisk: high"))
    assert (err.line, err.field) == (4, "risk")
    assert "duplicate key (first defined on line 3)" in err.reason


def test_a_directory_reports_every_file(tmp_path: Path) -> None:
    write(tmp_path, GOOD.format(id="test-book"))
    write(tmp_path, GOOD.format(id="a-book").replace("k8s.scale", "k8s.nuke"), "a-book")
    write(tmp_path, GOOD.format(id="b-book").replace("min: 1, max: 10, ", ""), "b-book")
    with pytest.raises(LoadError) as info:
        load_playbooks(tmp_path)
    assert sorted(Path(e.file).name for e in info.value.errors) == ["a-book.yaml", "b-book.yaml"]


def validate(directory: Path) -> int:
    parser = argparse.ArgumentParser()
    playbooks_cli.configure_parser(parser)
    return playbooks_cli.run(parser.parse_args([str(directory)]))


def test_validate_command_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(PLAYBOOKS) == 0
    out = capsys.readouterr().out
    assert "ok: 5 playbooks" in out
    assert "scale-deployment: traffic_surge -> k8s.scale (risk low)" in out


def test_validate_command_names_file_line_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = good(tmp_path, "{{ params.replicas }}", "{{ params.nope }}")
    assert validate(tmp_path) == 1
    out = capsys.readouterr().out
    assert f"{path}:13: steps[0].args.replicas: template names missing field 'params.nope'" in out
    assert "1 error(s) in 1 file(s)" in out


def test_validate_command_on_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(tmp_path / "nope") == 1
    assert "not a directory of playbooks" in capsys.readouterr().out


def test_schema_and_template_errors_are_reported_together(tmp_path: Path) -> None:
    path = good(tmp_path, "risk: low", "risk: urgent")
    path.write_text(path.read_text().replace("{{ params.replicas }}", "{{ params.many }}"))
    errors = errors_of(path)
    assert [(e.line, e.field) for e in errors] == [(3, "risk"), (13, "steps[0].args.replicas")]


def test_the_set_version_is_a_content_hash(tmp_path: Path) -> None:
    write(tmp_path, GOOD.format(id="test-book"))
    first = load_playbooks(tmp_path).version()
    write(tmp_path, "# a comment\n" + GOOD.format(id="test-book"))
    assert load_playbooks(tmp_path).version() == first
    write(tmp_path, GOOD.format(id="test-book").replace("max: 10", "max: 11"))
    assert load_playbooks(tmp_path).version() != first
