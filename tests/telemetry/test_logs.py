"""Logs as a log pipeline reads them: every line JSON, the libraries' included, with the
incident's ids; and a log line never fails the code that writes it."""

from __future__ import annotations

import io
import json
import logging

import pytest

from aiops.logs import configure_logging, get_logger


def test_library_lines_are_json_with_the_incident_ids(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    get_logger("aiops.test").info("ours", step=1)
    # temporalio's activity logger hands the activity's details over as this extra.
    logging.getLogger("temporalio.activity").warning(
        "theirs",
        extra={"temporal_activity": {"workflow_id": "incident-abc", "run_id": "r1"}},
    )
    logging.getLogger("uvicorn.error").error("server said %s", "no")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    ours, theirs, server = lines
    assert ours["event"] == "ours" and ours["step"] == 1
    assert (theirs["workflow_id"], theirs["incident_id"]) == ("incident-abc", "incident-abc")
    assert theirs["logger"] == "temporalio.activity" and theirs["level"] == "warning"
    assert server["event"] == "server said no"


def test_a_closed_stderr_of_the_past_fails_no_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found in the Python 3.13 run: logging bound to a test's captured stderr made every later
    # activity that logged fail with "I/O operation on closed file".
    old = io.StringIO()
    monkeypatch.setattr("sys.stderr", old)
    configure_logging("info", "json")
    old.close()
    now = io.StringIO()
    monkeypatch.setattr("sys.stderr", now)
    get_logger("aiops.test").info("still written")
    logging.getLogger("temporalio").warning("also written")
    assert [json.loads(line)["event"] for line in now.getvalue().splitlines()] == [
        "still written",
        "also written",
    ]
