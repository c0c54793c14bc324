"""The anomaly plot: a real PNG of the series from Prometheus, attached once to the thread."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime, timedelta

import numpy as np

from aiops.activities.notify import NotifyActivities, NotifyApprovalInput
from aiops.approvals.slack.plot import render_png
from aiops.config import PrometheusSettings
from aiops.domain import Anomaly, Direction, Incident
from aiops.integrations.prometheus import Prometheus
from tests.approvals.slack.stub import SlackStub
from tests.approvals.slack.test_blocks import REPORT, request
from tests.servers import PrometheusServer


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        if kind == b"IHDR":
            size = struct.unpack(">II", data[:8])
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height = size
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * 3)
    return raw[:, 1:].reshape(height, width, 3)


def test_plot_shows_the_jump_and_marks_its_start() -> None:
    t = list(range(100))
    v = [1.0] * 50 + [5.0] * 50
    img = decode(render_png([(t, v)], mark_at=50, width=200, height=100))
    assert img.shape == (100, 200, 3)
    red = np.where((img == (220, 50, 47)).all(axis=2).any(axis=0))[0]
    assert 95 <= red.min() <= red.max() <= 105  # the marker sits mid-chart, at t=50
    blue = (img == (38, 139, 210)).all(axis=2)
    rows_left = np.where(blue[:, 20])[0]
    rows_right = np.where(blue[:, 180])[0]
    assert rows_right.mean() < rows_left.mean()  # after the jump the line is higher up


async def test_plot_of_the_top_anomaly_goes_to_the_thread_once(
    slack: SlackStub,
    notify: NotifyActivities,
    prometheus: PrometheusServer,
) -> None:
    now = datetime.now(UTC)
    incident = Incident(
        id="incident-plot",
        fingerprint="p" * 16,
        opened_at=now,
        anomalies=[
            Anomaly(
                signal="up",
                series={"job": "aiops-test"},
                query="aiops_test_up",
                start=now - timedelta(seconds=10),
                score=0.9,
                direction=Direction.UP,
                evidence_window=(now - timedelta(seconds=60), now + timedelta(seconds=30)),
            )
        ],
    )
    notify.metrics = Prometheus(PrometheusSettings(url=prometheus.url))
    inp = NotifyApprovalInput(request=request(), report=REPORT, incident=incident)
    first = await notify.notify_approval_request(inp)
    again = await notify.notify_approval_request(inp)
    assert first.detail == "posted; plot attached", first.detail
    assert again.detail == "updated"
    assert len(slack.uploads) == 1
    assert decode(slack.uploads[0]).shape[0] > 0
    complete = slack.of("files.completeUploadExternal")
    assert len(complete) == 1 and complete[0].params["thread_ts"] == first.ts
    assert "anomaly start" in str(complete[0].params["files"])


async def test_a_plot_that_cannot_be_drawn_does_not_block_the_request(
    slack: SlackStub,
    notify: NotifyActivities,
    prometheus: PrometheusServer,
) -> None:
    now = datetime.now(UTC)
    incident = Incident(
        id="incident-noplot",
        fingerprint="q" * 16,
        opened_at=now,
        anomalies=[
            Anomaly(
                signal="none",
                series={},
                query="aiops_no_such_metric",
                start=now,
                score=1,
                direction=Direction.UP,
            )
        ],
    )
    notify.metrics = Prometheus(PrometheusSettings(url=prometheus.url))
    result = await notify.notify_approval_request(
        NotifyApprovalInput(request=request(), report=REPORT, incident=incident)
    )
    assert result.delivered and "plot skipped: no finite values" in result.detail
    assert slack.uploads == []
