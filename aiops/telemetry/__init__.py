"""aiops' own health, metrics and traces: what an SRE needs to run aiops itself.

`metrics` defines the Prometheus series; `server` serves /healthz, /readyz and /metrics on a port
of their own; `interceptor` fills the series from the activities the worker runs; `incidents`
reads incident and approval state from Temporal's visibility; `runtime` builds the Temporal
runtime whose SDK metrics join /metrics, and `tracing` the optional OpenTelemetry tracing.
"""
