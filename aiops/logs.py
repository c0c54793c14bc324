"""structlog set-up: readable on a terminal, one JSON object per line everywhere else.

Our own loggers and the libraries' stdlib loggers (temporalio, uvicorn, fastmcp, httpx, ...) end
in the same renderer, so a log pipeline reading a pod's output never meets a line it cannot parse.
Lines written while an incident's activity runs carry `incident_id` and `workflow_id`: the
worker's interceptor binds them (aiops.telemetry.interceptor), and temporalio's own workflow and
activity loggers hand them over in the record's `temporal_workflow` / `temporal_activity` extras.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

Format = Literal["auto", "json", "console"]

# uvicorn and fastmcp install handlers of their own unless told not to; these names are handed
# back to the root handler so their lines are rendered like ours.
_ADOPTED = ("uvicorn", "uvicorn.error", "uvicorn.access", "fastmcp")

INCIDENT_PREFIX = "incident-"


def use_json(fmt: Format, stream: TextIO | None = None) -> bool:
    return fmt == "json" or (fmt == "auto" and not (stream or sys.stderr).isatty())


def configure_logging(
    level: str = "info", fmt: Format = "auto", redact: Callable[[Any], Any] | None = None
) -> None:
    """`redact` (aiops.integrations.redact's `lazy_data`) masks secrets in every line, ours and
    the libraries', the exception text included, before it is written: each field's value, and
    the whole value of a field whose name says it holds a secret."""
    as_json = use_json(fmt)
    numeric = logging.getLevelNamesMapping()[level.upper()]
    masking: list[Processor] = [_redacting(redact)] if redact is not None else []
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        temporal_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            *masking,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_CurrentStderrLogger,
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                *masking,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # Libraries log through stdlib logging; keep them quiet unless asked.
    root.setLevel(max(numeric, logging.WARNING))
    adopt_library_loggers()
    if as_json:
        # fastmcp puts a Rich handler on its logger at import unless logging is left to us.
        os.environ.setdefault("FASTMCP_LOG_ENABLED", "false")


class _CurrentStderrLogger:
    """structlog's PrintLogger, but writing to whatever sys.stderr is when a line is written:
    a stream bound at configuration time may be closed by then (a test's captured stderr),
    and a log line must never fail the activity that writes it."""

    def __init__(self, *args: Any) -> None:
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        with self._lock:
            print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


class _CurrentStderrHandler(logging.StreamHandler[TextIO]):
    """A stdlib handler on whatever sys.stderr is when a record is written (see above)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """The stream is always the current sys.stderr."""


def adopt_library_loggers() -> None:
    """Hand loggers that libraries configured for themselves back to the root handler. Call it
    again after a library set up its loggers (uvicorn does so when its Config is built)."""
    for name in _ADOPTED:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True


def temporal_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """workflow_id (and incident_id, for incident workflows) from temporalio's log extras."""
    record = event.get("_record")
    if record is not None:
        for extra in ("temporal_workflow", "temporal_activity"):
            info: Any = getattr(record, extra, None)
            if isinstance(info, dict) and info.get("workflow_id"):
                event.setdefault("workflow_id", info["workflow_id"])
                event.setdefault("run_id", info.get("run_id") or info.get("workflow_run_id"))
    workflow_id = event.get("workflow_id")
    if isinstance(workflow_id, str) and workflow_id.startswith(INCIDENT_PREFIX):
        event.setdefault("incident_id", workflow_id)
    return event


def _redacting(redact: Callable[[Any], Any]) -> Processor:
    def processor(logger: object, method: str, event: EventDict) -> EventDict:
        masked: EventDict = redact(dict(event))
        return masked

    return processor


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
