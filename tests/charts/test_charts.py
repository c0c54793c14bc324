"""The one chart module (MCP and Slack): a render of fixed data matches the reference PNG a
person looked at (axes, UTC time ticks, unit, shaded window, legend, a gap kept), compared with
matplotlib's tolerant image comparison so font hinting or a newer FreeType does not fail it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from matplotlib.testing.compare import compare_images

from aiops.charts import Line, NothingToDrawError, legend_names, line_chart
from tests.charts.reference import reference_png

HERE = Path(__file__).parent


def test_render_matches_the_reference_a_person_looked_at(tmp_path: Path) -> None:
    actual = tmp_path / "actual.png"
    actual.write_bytes(reference_png())
    # RMS over pixel values 0-255: a wrong axis, a missing legend or shading fails; hinting not.
    problem = compare_images(str(HERE / "reference.png"), str(actual), tol=6)
    assert problem is None, problem


def test_without_the_shaded_window_the_comparison_fails(tmp_path: Path) -> None:
    """The comparison can fail: a chart missing what matters differs beyond the tolerance."""
    ts = [1_795_000_000.0 + 15 * i for i in range(240)]
    plain = line_chart([Line({"pod": "a"}, ts, [0.005] * 240)], title="error_ratio of cartservice")
    actual = tmp_path / "plain.png"
    actual.write_bytes(plain)
    assert compare_images(str(HERE / "reference.png"), str(actual), tol=6) is not None


def test_legend_names_lines_by_what_tells_them_apart() -> None:
    labels = [
        {"__name__": "x", "namespace": "shop", "pod": "cart-1"},
        {"__name__": "x", "namespace": "shop", "pod": "cart-2"},
    ]
    assert legend_names(labels) == ["pod=cart-1", "pod=cart-2"]
    assert legend_names([{"namespace": "shop"}]) == ["namespace=shop"]
    assert legend_names([{}]) == ["{}"]


def test_nothing_finite_is_an_error_not_an_empty_chart() -> None:
    with pytest.raises(NothingToDrawError):
        line_chart([Line({}, [1.0, 2.0], [math.nan, math.nan])], title="t")


def test_same_data_same_bytes() -> None:
    assert reference_png() == reference_png()
