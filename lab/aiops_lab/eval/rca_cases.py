"""Load root-cause cases in the RCAEval layout.

    DIR/<service>_<fault>/<n>/metrics.csv      time,<service>_<metric>,...  (time in unix seconds)
    DIR/<service>_<fault>/<n>/inject_time.txt  unix seconds of the fault injection
    DIR/<service>_<fault>/<n>/edges.csv        optional service graph: time,client,server,calls,
                                               client_latency_<q>,server_latency_<q>,... (seconds)

The label is the case folder's name: the root-cause service before the first underscore, the
fault after it. Every problem is reported with the file and line so the data can be fixed.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aiops.domain import FaultType
from aiops.rca import EdgeSeries, MetricsMatrix, RcaInputError


class CaseError(ValueError):
    """A case file is missing or malformed; the message names the file and line."""


# Fault names used by RCAEval, BARO, Nezha and RCD data → the planner's fault types.
FAULT_TYPES: dict[str, FaultType] = {
    "cpu": FaultType.CPU,
    "cpu-contention": FaultType.CPU,
    "cpu-consumed": FaultType.CPU,
    "cpu-hog": FaultType.CPU,
    "mem": FaultType.MEMORY,
    "memory": FaultType.MEMORY,
    "mem-leak": FaultType.MEMORY,
    "delay": FaultType.NETWORK_LATENCY,
    "network-delay": FaultType.NETWORK_LATENCY,
    "latency": FaultType.LATENCY,
    "loss": FaultType.NETWORK_LOSS,
    "network-loss": FaultType.NETWORK_LOSS,
    "error": FaultType.ERRORS,
    "errors": FaultType.ERRORS,
    "crash": FaultType.CRASHLOOP,
    "crashloop": FaultType.CRASHLOOP,
    "pod-failure": FaultType.CRASHLOOP,
    "rollout": FaultType.BAD_ROLLOUT,
    "bad-rollout": FaultType.BAD_ROLLOUT,
    "node": FaultType.NODE,
    "traffic": FaultType.TRAFFIC_SURGE,
    "traffic-surge": FaultType.TRAFFIC_SURGE,
}


@dataclass(frozen=True)
class Case:
    name: str  # "<service>_<fault>/<n>"
    service: str
    fault: str
    matrix: MetricsMatrix
    inject_time: float
    path: Path
    edges: tuple[EdgeSeries, ...] = ()  # from edges.csv, when the case has one

    @property
    def fault_type(self) -> FaultType | None:
        return FAULT_TYPES.get(self.fault.lower().replace("_", "-"))


def read_call_graph(path: Path) -> list[tuple[str, str]]:
    """Edges caller → callee, one `caller,callee` per line; blank lines and `#` comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaseError(f"{path}: missing (expected one 'caller,callee' per line)") from None
    edges: list[tuple[str, str]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2 or not all(parts):
            raise CaseError(f"{path}:{lineno}: expected 'caller,callee', got {raw.strip()!r}")
        edges.append((parts[0], parts[1]))
    return edges


def load_systems(root: Path) -> dict[str, str]:
    """Optional DIR/cases.json (a list of {"case": "<folder>/<n>", "system": ...}): case → system.

    Only used to group figures per system; absent file → {}.
    """
    path = root / "cases.json"
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CaseError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(doc, list):
        raise CaseError(f"{path}: expected a list of case records")
    out: dict[str, str] = {}
    for i, rec in enumerate(doc):
        if not isinstance(rec, dict):
            raise CaseError(f"{path}: record {i} is not an object")
        case, system = rec.get("case"), rec.get("system")
        if isinstance(case, str) and isinstance(system, str):
            out[case] = system
    return out


@dataclass(frozen=True)
class BrokenCase:
    """A case folder whose files could not be read; `reason` names the file and line."""

    name: str
    service: str
    fault: str
    path: Path
    reason: str


def load_cases(root: Path) -> list[Case]:
    """Every case under `root`, sorted by name. Raises CaseError on the first bad file."""
    cases, broken = scan_cases(root)
    if broken:
        raise CaseError(broken[0].reason)
    return cases


def scan_cases(root: Path) -> tuple[list[Case], list[BrokenCase]]:
    """Every case under `root`, and the case folders whose files are unusable (each with its
    reason), sorted by name. Raises CaseError only when `root` itself is unusable: not a
    folder, a folder that is not `<service>_<fault>`, or no case at all."""
    if not root.is_dir():
        raise CaseError(f"{root}: not a directory (expected DIR/<service>_<fault>/<n>/metrics.csv)")
    cases: list[Case] = []
    broken: list[BrokenCase] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if "_" not in folder.name:
            raise CaseError(
                f"{folder}: case folder names must be <service>_<fault> (no underscore found)"
            )
        service, fault = folder.name.split("_", 1)
        reps = sorted((p for p in folder.iterdir() if p.is_dir()), key=_rep_key)
        if not reps:
            raise CaseError(f"{folder}: no repetition folders (<n>/metrics.csv) inside")
        for rep in reps:
            try:
                cases.append(load_case(rep, service=service, fault=fault))
            except CaseError as exc:
                name = f"{folder.name}/{rep.name}"
                broken.append(BrokenCase(name, service, fault, rep, str(exc)))
    if not cases and not broken:
        raise CaseError(f"{root}: no case folders <service>_<fault>/<n>/ found")
    return cases, broken


def _rep_key(p: Path) -> tuple[int, str]:
    return (int(p.name), "") if p.name.isdigit() else (1 << 30, p.name)


def load_case(folder: Path, *, service: str, fault: str) -> Case:
    metrics = folder / "metrics.csv"
    inject = folder / "inject_time.txt"
    matrix = read_metrics_csv(metrics)
    inject_time = read_inject_time(inject)
    edges_csv = folder / "edges.csv"
    return Case(
        name=f"{folder.parent.name}/{folder.name}",
        service=service,
        fault=fault,
        matrix=matrix,
        inject_time=inject_time,
        path=folder,
        edges=read_edges_csv(edges_csv) if edges_csv.is_file() else (),
    )


def read_inject_time(path: Path) -> float:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaseError(
            f"{path}: missing (it must hold the injection time in unix seconds)"
        ) from None
    lines = [ln.strip() for ln in text.splitlines()]
    content = [(i, ln) for i, ln in enumerate(lines, start=1) if ln]
    if not content:
        raise CaseError(f"{path}:1: empty; write the injection time in unix seconds")
    if len(content) > 1:
        raise CaseError(f"{path}:{content[1][0]}: one value expected, found a second line")
    lineno, value = content[0]
    try:
        t = float(value)
    except ValueError:
        raise CaseError(
            f"{path}:{lineno}: {value!r} is not a number; write unix seconds, e.g. 1661142963"
        ) from None
    if not math.isfinite(t) or t <= 0:
        raise CaseError(f"{path}:{lineno}: {value!r} is not a valid unix time")
    return t


def read_metrics_csv(path: Path) -> MetricsMatrix:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise CaseError(f"{path}: missing (expected a CSV with a time column)") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise CaseError(
                f"{path}:1: empty file; expected a header 'time,<service>_<metric>,...'"
            )
        header = [h.strip() for h in header]
        if not header or header[0] != "time":
            raise CaseError(
                f"{path}:1: first column must be 'time' (unix seconds), got {header[0]!r}"
            )
        columns = header[1:]
        if not columns:
            raise CaseError(f"{path}:1: no metric columns after 'time'")
        for pos, col in enumerate(columns, start=2):
            if "_" not in col or col.startswith("_"):
                raise CaseError(f"{path}:1: column {pos} {col!r} is not named <service>_<metric>")
        seen: set[str] = set()
        for col in columns:
            if col in seen:
                raise CaseError(f"{path}:1: column {col!r} appears twice")
            seen.add(col)
        width = len(header)
        rows: list[list[float]] = []
        for row in reader:
            lineno = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != width:
                raise CaseError(f"{path}:{lineno}: {len(row)} fields, the header has {width}")
            values: list[float] = []
            for col, cell in zip(header, row, strict=True):
                cell = cell.strip()
                if cell == "" or cell.lower() in ("nan", "null", "none"):
                    if col == "time":
                        raise CaseError(f"{path}:{lineno}: the time is empty")
                    values.append(math.nan)
                    continue
                try:
                    values.append(float(cell))
                except ValueError:
                    raise CaseError(
                        f"{path}:{lineno}: column {col!r} has {cell!r}, not a number"
                    ) from None
            if rows and values[0] <= rows[-1][0]:
                raise CaseError(
                    f"{path}:{lineno}: time {row[0].strip()} does not come after the previous"
                    " row's; rows must be in increasing time order without duplicates"
                )
            rows.append(values)
    if not rows:
        raise CaseError(f"{path}:2: no data rows after the header")
    data = np.asarray(rows, dtype=np.float64)
    try:
        return MetricsMatrix(times=data[:, 0], columns=tuple(columns), values=data[:, 1:])
    except RcaInputError as exc:  # pragma: no cover - the checks above catch these first
        raise CaseError(f"{path}: {exc}") from None


EDGE_COLUMNS = ("time", "client", "server", "calls")


def read_edges_csv(path: Path, quantile: str = "p50") -> tuple[EdgeSeries, ...]:
    """The service graph of a case: one row per bin and caller → callee edge with the calls and
    the client and server latency quantiles in seconds (`client_latency_p50`, ...); optional
    `client_errors` / `server_errors` (share of the bin's calls that failed on each side)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        wanted = [*EDGE_COLUMNS, f"client_latency_{quantile}", f"server_latency_{quantile}"]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise CaseError(
                f"{path}:1: missing column(s) {', '.join(missing)}; expected "
                f"{','.join(wanted)}[,client_errors,server_errors]"
            )
        optional = [c for c in ("client_errors", "server_errors") if c in header]
        rows: dict[tuple[str, str], list[list[float]]] = {}
        for row in reader:
            lineno = reader.line_num
            client, server = (row.get("client") or "").strip(), (row.get("server") or "").strip()
            if not client or not server:
                raise CaseError(f"{path}:{lineno}: empty client or server")
            values: list[float] = []
            for col in [EDGE_COLUMNS[0], *wanted[3:], *optional]:
                cell = (row.get(col) or "").strip()
                try:
                    values.append(float(cell) if cell else math.nan)
                except ValueError:
                    raise CaseError(
                        f"{path}:{lineno}: column {col!r} has {cell!r}, not a number"
                    ) from None
            series = rows.setdefault((client, server), [])
            if series and values[0] <= series[-1][0]:
                raise CaseError(
                    f"{path}:{lineno}: time {values[0]:.0f} of {client} → {server} does not come "
                    "after its previous row; sort the rows by time"
                )
            series.append(values)
    edges = []
    for (client, server), series in sorted(rows.items()):
        data = np.asarray(series, dtype=np.float64)
        extra = {c: data[:, 4 + i] for i, c in enumerate(optional)}
        edges.append(
            EdgeSeries(
                client=client,
                server=server,
                times=data[:, 0],
                calls=data[:, 1],
                client_latency=data[:, 2],
                server_latency=data[:, 3],
                client_errors=extra.get("client_errors"),
                server_errors=extra.get("server_errors"),
                statistic=quantile,
            )
        )
    return tuple(edges)
