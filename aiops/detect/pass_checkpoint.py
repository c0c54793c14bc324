"""Checkpoints of the detection pass: every signal's detector state as one .npz archive (numpy
arrays and one JSON header, no pickle), so a long-running process or a Temporal activity can
carry it from pass to pass and a restarted worker resumes where the last pass left off."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from aiops.detect.catalog import Signal
from aiops.detect.novelty import NoveltyState
from aiops.detect.pass_types import Held, PassConfig, SignalState
from aiops.detect.tracker import SeriesKey, SignalTracker
from aiops.domain.models import Anomaly

FORMAT_VERSION = 4  # 2: the detector remembers pre-alarm ranges; 3: SPOT statistics; 4: and the
# SPOT tail before an alarm


class CheckpointError(Exception):
    """A checkpoint could not be read; callers start cold (the message says why)."""


def to_bytes(config: PassConfig, states: Mapping[str, SignalState]) -> bytes:
    """The whole state as an .npz archive (numpy arrays + one JSON header, no pickle)."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    header: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "config": config.fingerprint(),
        "signals": {},
    }
    for i, (name, st) in enumerate(states.items()):
        tr = st.tracker
        s = tr.detector.state
        header["signals"][name] = {
            "held": [
                {
                    "col": h.col,
                    "present": h.present,
                    "mid": h.mid,
                    "anomaly": h.anomaly.model_dump(mode="json"),
                }
                for h in st.held
            ],
            "prefix": f"s{i}",
            "query": st.query,
            "last_at": st.last_at,
            "t": s.t,
            "n": tr.detector.n_series,
            "keys": _keys_in_order(tr.index),  # tuples: JSON arrays
            "open_quiet": [[c, q] for c, q in tr.open_quiet.items()],
        }
        for f in dataclasses.fields(NoveltyState):
            if f.name != "t":
                arrays[f"s{i}.{f.name}"] = getattr(s, f.name)
        arrays[f"s{i}.last_seen"] = st.last_seen
        arrays[f"s{i}.since_gap"] = st.since_gap
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def restore(
    data: bytes, signals: Mapping[str, Signal], config: PassConfig
) -> dict[str, SignalState]:
    """The per-signal states of a checkpoint. Signals whose query or settings changed are left
    out (they start cold); an unreadable checkpoint raises CheckpointError."""
    states: dict[str, SignalState] = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            header = json.loads(bytes(npz["header"]).decode())
            if header.get("version") != FORMAT_VERSION:
                raise CheckpointError(
                    f"checkpoint format {header.get('version')!r} is not {FORMAT_VERSION}"
                )
            if header["config"] != config.fingerprint():
                return states  # other detector settings: the old state would mislead
            for name, meta in header["signals"].items():
                signal = signals.get(name)
                if signal is None:
                    continue
                if meta["query"] != signal.pass_query(config.rate_window).key:
                    continue
                states[name] = _restore_signal(config, signal, meta, npz)
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint is unreadable ({type(exc).__name__}: {exc})") from exc
    return states


def _restore_signal(c: PassConfig, signal: Signal, meta: dict[str, Any], npz: Any) -> SignalState:
    p = meta["prefix"]
    tracker = SignalTracker(
        signal,
        step_seconds=c.step_seconds,
        threshold=c.threshold,
        config=c.step_detector(),
        window=c.rate_window,
    )
    fields = {
        f.name: np.array(npz[f"{p}.{f.name}"])
        for f in dataclasses.fields(NoveltyState)
        if f.name != "t"
    }
    n = int(meta["n"])
    if any(v.shape[-1 if k != "history" else 0] != n for k, v in fields.items()):
        raise CheckpointError(f"checkpoint of signal {signal.name!r} has inconsistent arrays")
    tracker.detector.state = NoveltyState(**fields, t=int(meta["t"]))
    tracker.detector.n_series = n
    tracker.detector.blame = np.zeros((fields["lo"].shape[0], n))
    tracker.index = {
        tuple((str(k), str(v)) for k, v in key): i for i, key in enumerate(meta["keys"])
    }
    tracker.open_quiet = {int(col): int(q) for col, q in meta["open_quiet"]}
    if len(tracker.index) != n:
        raise CheckpointError(
            f"checkpoint of signal {signal.name!r} has {n} columns but "
            f"{len(tracker.index)} series keys"
        )
    last_at = meta["last_at"]
    held = [
        Held(
            int(h["col"]), Anomaly.model_validate(h["anomaly"]), int(h["present"]), float(h["mid"])
        )
        for h in meta["held"]
    ]
    return SignalState(
        tracker,
        meta["query"],
        None if last_at is None else float(last_at),
        np.array(npz[f"{p}.last_seen"], np.float64),
        np.array(npz[f"{p}.since_gap"], np.int64),
        held,
    )


def _keys_in_order(index: Mapping[SeriesKey, int]) -> list[SeriesKey]:
    keys: list[SeriesKey] = [()] * len(index)
    for k, c in index.items():
        keys[c] = k
    return keys
