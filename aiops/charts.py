"""Charts of metric series for people: the MCP `plot_metric` tool and the Slack approval thread
draw with this one module (matplotlib's Agg backend, no display needed).

A chart an SRE can read at a glance: time on the x axis in UTC with readable ticks, the unit on
the y axis, the anomaly window shaded, the anomaly's start marked, and a legend naming each line
by the labels that tell the lines apart. Gaps in the data (NaN) stay gaps.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC

MAX_LINES = 8
_SHADE = "#ffb74d"
_MARK = "#d32f2f"
_DAY = 86400.0


@dataclass(frozen=True)
class Line:
    labels: Mapping[str, str]
    timestamps: Sequence[float]  # unix seconds
    values: Sequence[float]


class NothingToDrawError(ValueError):
    """No line has a single finite value: there is no chart to show."""


def line_chart(
    lines: Sequence[Line],
    *,
    title: str,
    unit: str = "",
    shade: tuple[float, float] | None = None,
    mark_at: float | None = None,
    x_range: tuple[float, float] | None = None,
    size: tuple[float, float] = (8.0, 3.6),
    dpi: int = 100,
) -> bytes:
    """PNG bytes of up to MAX_LINES lines. `shade` (unix seconds) is the anomaly window,
    `mark_at` a vertical line at the anomaly's start, `x_range` the time span shown."""
    drawn = [ln for ln in lines[:MAX_LINES] if any(math.isfinite(v) for v in ln.values)]
    if not drawn:
        raise NothingToDrawError("no finite values to plot")
    # matplotlib on first use: it takes about a second to import, which every `aiops` command
    # (the CLI builds its parser from modules that import this one) would pay otherwise.
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.xaxis_date(tz=UTC)
    names = legend_names([ln.labels for ln in drawn])
    for ln, name in zip(drawn, names, strict=True):
        ax.plot([_x(t) for t in ln.timestamps], list(ln.values), linewidth=1.6, label=name)
    if shade is not None:
        ax.axvspan(_x(shade[0]), _x(shade[1]), color=_SHADE, alpha=0.3, label="anomaly window")
    if mark_at is not None:
        ax.axvline(_x(mark_at), color=_MARK, linewidth=1.2, linestyle="--", label="anomaly start")
    if x_range is not None:
        ax.set_xlim(_x(x_range[0]), _x(x_range[1]))
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(unit or "value")
    ax.set_title(title[:90] + ("..." if len(title) > 90 else ""), fontsize=10, loc="left")
    ax.grid(True, color="#e0e0e0", linewidth=0.6)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.85)
    if len(lines) > MAX_LINES:
        ax.text(
            0.99,
            0.02,
            f"{len(lines) - MAX_LINES} more series not drawn",
            transform=ax.transAxes,
            ha="right",
            fontsize=7,
            color="#616161",
        )
    out = io.BytesIO()
    # No software or date metadata: the same data gives the same bytes.
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def legend_names(label_sets: Sequence[Mapping[str, str]]) -> list[str]:
    """Each line named by the labels whose values differ between lines (all of them for one
    line), so a legend says `pod=cart-1` rather than repeating what every line shares."""
    keys = sorted({k for labels in label_sets for k in labels if k != "__name__"})
    varying = [k for k in keys if len({labels.get(k) for labels in label_sets}) > 1]
    shown = varying or keys
    names = []
    for labels in label_sets:
        text = ", ".join(f"{k}={labels[k]}" for k in shown if k in labels) or "{}"
        names.append(text if len(text) <= 60 else text[:57] + "...")
    return names


def _x(t: float) -> float:
    """Unix seconds as matplotlib's date number (days since its epoch, 1970-01-01 UTC)."""
    return t / _DAY
