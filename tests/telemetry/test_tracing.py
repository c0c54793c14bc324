"""Tracing: off by default (nothing of OpenTelemetry imported), and with an OTLP endpoint the
worker's workflows and activities arrive as spans at a collector (a loopback OTLP/HTTP receiver
that decodes what the official exporter posts)."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from aiops.config import TelemetrySettings
from aiops.telemetry.tracing import flush_traces, tracing_interceptors


def test_tracing_is_off_and_costs_no_import_by_default() -> None:
    assert tracing_interceptors(TelemetrySettings()) == []
    # (langsmith, under LangGraph, imports opentelemetry's SDK whenever it is installed; what
    # tracing adds is the interceptor, the exporter and a tracer provider.)
    code = (
        "import sys, aiops.worker, aiops.telemetry.tracing as t; from aiops.config import "
        "TelemetrySettings; t.tracing_interceptors(TelemetrySettings()); "
        "from opentelemetry import trace; "
        "print(type(trace.get_tracer_provider()).__name__, sorted(m for m in sys.modules if "
        "m.startswith(('opentelemetry.exporter', 'temporalio.contrib.opentelemetry'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ProxyTracerProvider []"


class Collector:
    def __init__(self) -> None:
        self.spans: list[str] = []
        self.arrived = threading.Event()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        collector.spans += [span.name for span in scope.spans]
                collector.arrived.set()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


@activity.defn(name="traced_step")
async def traced_step(x: int) -> int:
    return x + 1


@workflow.defn(name="TracedProbe")
class TracedProbe:
    @workflow.run
    async def run(self, x: int) -> int:
        result: int = await workflow.execute_activity(
            traced_step, x, start_to_close_timeout=timedelta(seconds=30)
        )
        return result


async def test_spans_reach_the_otlp_endpoint(
    temporal_client: Client, task_queue: str, collector: Collector
) -> None:
    interceptors = tracing_interceptors(TelemetrySettings(otlp_endpoint=collector.url))
    assert interceptors
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[TracedProbe],
        activities=[traced_step],
        interceptors=interceptors,
    ):
        result = await temporal_client.execute_workflow(
            TracedProbe.run, 1, id=f"traced-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
    assert result == 2
    flush_traces()
    assert collector.arrived.wait(10), "no spans arrived at the OTLP endpoint"
    assert "RunActivity:traced_step" in collector.spans, collector.spans
