"""The anomaly plot: a real PNG of the series from Prometheus, attached once to the thread."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
from PIL import Image

from aiops.activities.notify import NotifyActivities, NotifyApprovalInput
from aiops.config import PrometheusSettings
from aiops.domain import Anomaly, Direction, Incident
from aiops.integrations.prometheus import Prometheus
from tests.approvals.slack.stub import SlackStub
from tests.approvals.slack.test_blocks import REPORT, request
from tests.servers import PrometheusServer


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


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
