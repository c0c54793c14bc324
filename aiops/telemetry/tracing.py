"""Optional OpenTelemetry tracing: temporalio's tracing interceptor, exported over OTLP/HTTP when
AIOPS_TELEMETRY__OTLP_ENDPOINT is set. Off by default, and then nothing is imported or wrapped,
so tracing costs nothing unless asked for. Needs the `tracing` extra
(opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http)."""

from __future__ import annotations

from temporalio.worker import Interceptor

from aiops.config import ConfigError, TelemetrySettings


class TracingUnavailableError(ConfigError):
    """Tracing was asked for but its packages are missing; the message says what to install."""


def tracing_interceptors(cfg: TelemetrySettings) -> list[Interceptor]:
    if not cfg.otlp_endpoint:
        return []
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError as exc:
        raise TracingUnavailableError(
            f"AIOPS_TELEMETRY__OTLP_ENDPOINT is set but OpenTelemetry is not installed ({exc}); "
            "install `aiops-daemon[tracing]` or unset the endpoint"
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": cfg.service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=cfg.otlp_endpoint)))
    trace.set_tracer_provider(provider)
    return [TracingInterceptor(provider.get_tracer("aiops"))]


def flush_traces() -> None:
    """Send the spans still buffered (on shutdown)."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        force_flush()
