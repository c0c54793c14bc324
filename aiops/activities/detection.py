"""The `detect_anomalies` activity: one detection pass, checkpoint in, anomalies + checkpoint out.

The detector state for 10,000 series is a few MiB, far too big for a workflow history that gets
a new pass every 15 s. So the state lives in a file under `<state_dir>/detection/<stream>/`,
named by the pass id, and the activity returns only a small reference (`DetectionCheckpoint`:
file, sha256, size). The file is a cache, not the truth: when it is missing (another worker host,
a wiped volume) or does not match its hash, the pass starts cold and primes the detectors from
Prometheus' own history, so detection resumes at once and the result says why (`cold_start`,
`checkpoint_note`). Only the newest few files per stream are kept.

The worker keeps the state in memory between passes, and writes the file only every
`checkpoint_every_s` (and after a cold start): at 100,000 series the file is 45 MiB, whose
writing every 15 s would cost each pass a third of a second and the disk 3 MB/s. A pass that does
not write returns the reference of the last file written, with its own pass id, series and time.
What a crash loses: the passes since that file. The pass after it (on this worker restarted, or
on another) reads the file and, as after a failed query, asks Prometheus for every grid time
since in one range query (within `prime_s`), so no sample is lost; an anomaly found in those
passes may be found again, and then joins the incident it opened. A retried pass with the same
input reads the same file and scores the same grid times: the activity is idempotent.

Workflows import this module for the name and the models only; heavy modules (numpy, the
Prometheus client) load when the activity object is built on the worker.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio import activity

from aiops.config import ConfigError, Settings
from aiops.domain import Anomaly

if TYPE_CHECKING:
    from aiops.detect.catalog import Signal, SignalCatalog
    from aiops.detect.detection_pass import DetectionState, PassConfig, PassResult
    from aiops.integrations.discovery import ProfileDiscovery
    from aiops.integrations.prometheus import Prometheus

#: Stable activity name: renaming the Python method must not break workflow histories.
DETECT_ANOMALIES = "detect_anomalies"

_SAFE_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
KEEP_CHECKPOINTS = 3  # per stream: the newest, plus older ones a retried pass may still read


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DetectionCheckpoint(_Message):
    """Where the detector state of a stream was left, and how to recognise it."""

    stream: str
    pass_id: str
    file: str = Field(description="path relative to <state_dir>/detection")
    sha256: str
    size_bytes: int
    series: int = Field(description="series tracked across all signals")
    at: datetime = Field(description="newest evaluation time scored")


class DetectAnomaliesInput(_Message):
    stream: str = Field(
        default="default",
        pattern=_SAFE_ID,
        description="one detection loop (e.g. the workflow id); keys the files",
    )
    pass_id: str | None = Field(
        default=None,
        pattern=_SAFE_ID,
        description="default: the evaluation time, e.g. 20260301T120000Z",
    )
    at: datetime | None = Field(
        default=None, description="evaluation time; default now (workflows pass workflow.now())"
    )
    checkpoint: DetectionCheckpoint | None = None


class SignalReport(_Message):
    signal: str
    status: Literal["ok", "failed", "up_to_date"]
    series: int = 0
    steps: int = 0
    error: str | None = None
    cold: bool = False


class DetectAnomaliesResult(_Message):
    pass_id: str
    at: datetime
    anomalies: list[Anomaly] = Field(description="new episodes (one per series), strongest first")
    signals: list[SignalReport]
    checkpoint: DetectionCheckpoint
    cold_start: bool = Field(
        description="some signals had no usable state and were primed "
        "from Prometheus history this pass"
    )
    checkpoint_note: str | None = None
    history_anomalies: int = 0
    evicted_series: int = 0
    seconds: float = 0.0


class DetectionActivities:
    """The detection pass bound to its settings and Prometheus; the worker registers `all()`."""

    def __init__(
        self,
        settings: Settings,
        prometheus: Prometheus | None = None,
        discovery: ProfileDiscovery | None = None,
    ) -> None:
        from aiops.detect.detection_pass import PassConfig
        from aiops.integrations.discovery import ProfileDiscovery
        from aiops.integrations.prometheus import Prometheus

        d = settings.detection
        self.settings = d
        self.prometheus = prometheus or Prometheus(settings.prometheus)
        # Which signals run follows what Prometheus has (asked every few minutes); settings'
        # signals, floors and exclusions are checked once here against every known signal.
        self.discovery = discovery or ProfileDiscovery(settings.profiles, self.prometheus)
        build_signals(d.signals, d.disabled, d.min_change)
        self.signals: list[Signal] = self._live_signals()
        self.config: PassConfig = PassConfig(
            step_seconds=d.interval_s,
            prime_seconds=d.prime_s,
            rate_window=d.rate_window,
            report_window_seconds=d.report_window_s,
            settle_seconds=d.settle_s,
        )
        self.parallel = d.parallel_queries
        self.root = settings.state_dir / "detection"
        # The state a worker left in memory, by stream, under its reference's (pass id, sha256):
        # saves reading the file back each pass; newer than the file when the write was skipped.
        self._cache: dict[str, tuple[tuple[str, str], DetectionState]] = {}
        self.checkpoint_every_s = d.checkpoint_every_s
        self._written: dict[str, DetectionCheckpoint] = {}  # by stream: the last file written
        self._kept: set[str] = set()  # streams whose pass carries on the state in memory
        self._lock = threading.Lock()

    @activity.defn(name=DETECT_ANOMALIES)
    def detect_anomalies(self, inp: DetectAnomaliesInput) -> DetectAnomaliesResult:
        return self.run_pass(inp)

    def all(self) -> list[object]:
        return [self.detect_anomalies]

    def _live_signals(self) -> list[Signal]:
        d = self.settings
        live = self.discovery.current().signals
        return build_signals(d.signals, d.disabled, d.min_change, base=live)

    def run_pass(self, inp: DetectAnomaliesInput) -> DetectAnomaliesResult:
        from aiops.detect.gc_pause import gc_paused
        from aiops.integrations.prometheus import RangeQuery
        from aiops.logs import get_logger

        started = time.perf_counter()
        now = inp.at or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        self.signals = self._live_signals()
        state, note = self._load(inp.stream, inp.checkpoint)
        plans = state.plan(now)
        with gc_paused():  # the answers are 100,000s of short-lived objects (gc_pause.py)
            answers = self.prometheus.fetch_many(
                [RangeQuery(p.promql, p.start, p.end, p.step_seconds) for p in plans],
                parallel=self.parallel,
                # A cold start's history in parts, none near Prometheus' timeout, and within
                # half the activity's timeout (DetectionLoopWorkflow: max(60 s, 4 intervals)).
                chunked=True,
                budget_s=max(30.0, 2 * self.settings.interval_s),
            )
            if activity.in_activity():
                activity.heartbeat("scoring")
            fetched = {p.signal: a for p, a in zip(plans, answers, strict=True)}
            del answers  # `fetched` holds them alone: apply frees each once fed
            result = state.apply(plans, fetched, consume=True)
        grid = state.grid_time(now)
        pass_id = inp.pass_id or grid.strftime("%Y%m%dT%H%M%SZ")
        cold = any(o.cold for o in result.outcomes)
        # A state read from a file (another worker's, a restart) is written anew: the files
        # this worker wrote may be gone.
        write = cold or inp.stream not in self._kept
        checkpoint = self._save(inp.stream, pass_id, state, max(result.at, grid), write=write)
        out = _result(
            pass_id,
            result,
            checkpoint,
            note,
            cold=cold,
            seconds=time.perf_counter() - started,
        )
        get_logger(__name__).info(
            "detection pass",
            stream=inp.stream,
            pass_id=pass_id,
            at=out.at.isoformat(),
            anomalies=len(out.anomalies),
            series=state.n_series,
            failed=[s.signal for s in out.signals if s.status == "failed"],
            cold_start=out.cold_start,
            seconds=round(out.seconds, 3),
        )
        return out

    # ---- checkpoint files --------------------------------------------------------------

    def _load(
        self, stream: str, ref: DetectionCheckpoint | None
    ) -> tuple[DetectionState, str | None]:
        from aiops.detect.detection_pass import CheckpointError, DetectionState

        self._kept.discard(stream)
        if ref is None:
            return DetectionState(self.signals, self.config), None
        with self._lock:
            cached = self._cache.pop(stream, None)  # popped: a failed pass must not reuse it
        if cached is not None and cached[0] == (ref.pass_id, ref.sha256):
            self._kept.add(stream)
            return self._with_current_signals(cached[1]), None
        path = self.root / ref.file
        try:
            data = path.read_bytes()
        except OSError as exc:
            return DetectionState(self.signals, self.config), (
                f"checkpoint {path} is not readable here ({exc.strerror}); primed from history"
            )
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            return DetectionState(self.signals, self.config), (
                f"checkpoint {path} does not match its sha256; primed from history"
            )
        try:
            state = DetectionState.from_bytes(data, self.signals, self.config)
        except CheckpointError as exc:
            return DetectionState(self.signals, self.config), (
                f"checkpoint {path}: {exc}; primed from history"
            )
        if ref.series and not state.n_series:
            return state, (
                f"checkpoint {path} was made with other detection settings; primed from history"
            )
        return state, None

    def _with_current_signals(self, state: DetectionState) -> DetectionState:
        """The state for the signals live now: discovery turned some on or off since (those
        start cold or are dropped; the rest carry on)."""
        from aiops.detect.detection_pass import DetectionState

        if state.signals == {s.name: s for s in self.signals}:
            return state
        return DetectionState.from_bytes(state.to_bytes(), self.signals, self.config)

    def _save(
        self, stream: str, pass_id: str, state: DetectionState, at: datetime, *, write: bool
    ) -> DetectionCheckpoint:
        """The reference to this pass's state: a new file when `write`, when none was written
        here yet or the last is `checkpoint_every_s` old; else the last file's (module doc)."""
        last = self._written.get(stream)
        if (
            not write
            and last is not None
            and (at - last.at).total_seconds() < self.checkpoint_every_s
        ):
            ref = last.model_copy(update={"pass_id": pass_id, "series": state.n_series, "at": at})
            with self._lock:
                self._cache[stream] = ((ref.pass_id, ref.sha256), state)
            return ref
        data = state.to_bytes()
        sha = hashlib.sha256(data).hexdigest()
        folder = self.root / stream
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{pass_id}.npz"
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers never see half a file
        _prune(folder, keep=path)
        ref = DetectionCheckpoint(
            stream=stream,
            pass_id=pass_id,
            file=f"{stream}/{path.name}",
            sha256=sha,
            size_bytes=len(data),
            series=state.n_series,
            at=at,
        )
        with self._lock:
            self._cache[stream] = ((pass_id, sha), state)
            self._written[stream] = ref
        return ref


def build_signals(
    user: list[dict[str, Any]],
    disabled: list[str],
    min_change: dict[str, dict[str, float]] | None = None,
    base: list[Signal] | None = None,
) -> list[Signal]:
    """The signals the detection pass watches: `base` (default: every built-in signal; the
    daemon passes what discovery found live) with the settings' own signals, floors and
    exclusions, with errors that name the setting to fix. Names in `disabled` and `min_change`
    are checked against every known signal, live or not."""
    from aiops.detect.catalog import build_catalog

    for i, raw in enumerate(user):
        try:
            build_catalog([raw])
        except ValidationError as exc:
            why = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'signal'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(
                f"invalid setting detection.signals[{i}]: {why}; fix the signal in the config "
                "file (fields: name, query, entity_label, direction, unit)"
            ) from exc
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"invalid setting detection.signals[{i}]: {exc}; fix the signal in the config "
                "file (fields: name, query, entity_label, direction, unit)"
            ) from exc
    known = build_catalog(user)
    unknown = sorted(set(disabled) - set(known.names()))
    if unknown:
        raise ConfigError(
            f"invalid setting detection.disabled: unknown signals {unknown}; "
            f"known: {', '.join(known.names())}"
        )
    _floors(known, min_change or {})
    catalog = known if base is None else build_catalog(user, base=base)
    floors = _floors(catalog, {k: v for k, v in (min_change or {}).items() if k in catalog})
    return [floors.get(s.name, s) for s in catalog if s.detect and s.name not in set(disabled)]


_FLOOR_FIELDS = ("min_delta", "min_ratio")


def _floors(catalog: SignalCatalog, min_change: dict[str, dict[str, float]]) -> dict[str, Signal]:
    """Catalog signals with the floors of setting detection.min_change applied."""
    from aiops.detect.catalog import Signal

    out: dict[str, Signal] = {}
    for name, floor in min_change.items():
        where = f"invalid setting detection.min_change.{name}"
        if name not in catalog:
            raise ConfigError(f"{where}: unknown signal; known: {', '.join(catalog.names())}")
        extra = sorted(set(floor) - set(_FLOOR_FIELDS))
        if extra:
            raise ConfigError(f"{where}: unknown keys {extra}; use {', '.join(_FLOOR_FIELDS)}")
        try:
            out[name] = Signal.model_validate({**catalog[name].model_dump(), **floor})
        except ValidationError as exc:
            why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{where}: {why}") from exc
    return out


def _prune(folder: Path, keep: Path) -> None:
    files = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [f for f in files if f != keep][KEEP_CHECKPOINTS - 1 :]:
        old.unlink(missing_ok=True)


def _result(
    pass_id: str,
    r: PassResult,
    checkpoint: DetectionCheckpoint,
    note: str | None,
    *,
    cold: bool,
    seconds: float,
) -> DetectAnomaliesResult:
    return DetectAnomaliesResult(
        pass_id=pass_id,
        at=checkpoint.at,
        anomalies=r.anomalies,
        signals=[
            SignalReport(
                signal=o.signal,
                status=o.status,
                series=o.series,
                steps=o.steps,
                error=o.error,
                cold=o.cold,
            )
            for o in r.outcomes
        ],
        checkpoint=checkpoint,
        cold_start=cold,
        checkpoint_note=note,
        history_anomalies=r.history_anomalies,
        evicted_series=r.evicted_series,
        seconds=seconds,
    )


# ---- command line: `aiops detect` (the lead wires it) ------------------------------------


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--passes",
        type=int,
        default=1,
        help="passes to run, one per detection interval (0: until interrupted)",
    )
    p.add_argument("--stream", default="cli", help="checkpoint stream under state_dir/detection")
    p.add_argument("--json", action="store_true", help="one JSON result per pass")


def run(args: argparse.Namespace) -> int:
    from aiops.config import load_settings
    from aiops.integrations.prometheus import PrometheusError

    try:
        settings = load_settings()
        acts = DetectionActivities(settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    checkpoint: DetectionCheckpoint | None = None
    failed = False
    n = 0
    try:
        while args.passes == 0 or n < args.passes:
            if n:
                time.sleep(settings.detection.interval_s)
            try:
                out = acts.run_pass(DetectAnomaliesInput(stream=args.stream, checkpoint=checkpoint))
            except (PrometheusError, ValidationError) as exc:
                print(exc, file=sys.stderr)
                return 1
            checkpoint = out.checkpoint
            failed = any(s.status == "failed" for s in out.signals)
            n += 1
            _print(out, as_json=args.json)
    except KeyboardInterrupt:
        return 0
    return 1 if failed else 0


def _print(out: DetectAnomaliesResult, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(out.model_dump(mode="json"), sort_keys=True))
        return
    ok = sum(s.status == "ok" for s in out.signals)
    print(
        f"pass {out.pass_id} at {out.at.isoformat()}: {ok}/{len(out.signals)} signals, "
        f"{out.checkpoint.series} series, {len(out.anomalies)} anomalies, "
        f"{out.seconds:.2f}s{' (cold start)' if out.cold_start else ''}"
    )
    for s in out.signals:
        if s.status == "failed":
            print(f"  {s.signal}: FAILED {s.error}")
    for a in out.anomalies:
        labels = ",".join(f"{k}={v}" for k, v in sorted(a.series.items()))
        base = "?" if a.baseline is None else f"{a.baseline:.4g}"
        print(
            f"  {a.start.isoformat()} {a.signal} {a.direction.value} {labels} "
            f"value={a.value:.4g} baseline={base} score={a.score:.2f}"
        )
