"""`aiops webhook`: Alertmanager's webhook receiver as a service that opens incidents.

Firing alerts become anomalies (aiops.integrations.alertmanager) and open or join incidents
exactly as the detection loop's do (aiops.incidents.intake): one IncidentWorkflow per namespace,
with the rules as their files say at that moment. An alert only starts an investigation; policy
decides what needs approval from the plan and the cluster, never from the alert's labels or
annotations. Resolved alerts open nothing, and an alert delivered again after its incident
closed opens no second one.

The receiver needs Temporal and the rules, not the cluster: in Kubernetes it runs as its own
Deployment without a ServiceAccount token (deploy/kubernetes/webhook.yaml).
"""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp
from temporalio.client import Client

from aiops.config import AlertmanagerSettings, Settings
from aiops.domain import Anomaly
from aiops.frontdoor import FrontDoor, guard
from aiops.incidents.client import IncidentClient
from aiops.incidents.intake import AnomalyIntake, incident_sink, search_attributes_ready
from aiops.incidents.rules import RulesSource, load_rules
from aiops.integrations.alertmanager import (
    AnomalySink,
    SinkUnavailableError,
    WebhookAuth,
    create_app,
)
from aiops.integrations.temporal import connect
from aiops.logs import adopt_library_loggers, get_logger
from aiops.telemetry import metrics
from aiops.telemetry.process import ProcessTelemetry

log = get_logger(__name__)

PATH = "/alertmanager"


def webhook_door(cfg: AlertmanagerSettings) -> FrontDoor:
    return FrontDoor(
        name="the Alertmanager webhook",
        host=cfg.host,
        credentials=bool(cfg.tokens or cfg.basic_auth),
        credentials_setting="AIOPS_ALERTMANAGER__TOKENS (a JSON list) or "
        "AIOPS_ALERTMANAGER__BASIC_AUTH",
        hosts_setting="AIOPS_ALERTMANAGER__ALLOWED_HOSTS",
        allowed_hosts=tuple(cfg.allowed_hosts),
    )


def webhook_auth(cfg: AlertmanagerSettings) -> WebhookAuth | None:
    """The accepted credentials; None (no authentication) only on a loopback address."""
    webhook_door(cfg).check()
    if not cfg.tokens and not cfg.basic_auth:
        return None
    return WebhookAuth(
        bearer_tokens=[t.get_secret_value() for t in cfg.tokens],
        basic={user: pw.get_secret_value() for user, pw in cfg.basic_auth.items()},
    )


def webhook_url(cfg: AlertmanagerSettings) -> str:
    return f"http://{cfg.host}:{cfg.port}{PATH}"


async def receiver_app(settings: Settings, client: Client, rules: RulesSource) -> ASGIApp:
    """The receiver behind the front-door rule (aiops.frontdoor)."""
    auth = webhook_auth(settings.alertmanager)
    index = await search_attributes_ready(client)
    intake = AnomalyIntake(IncidentClient(client, settings.temporal.task_queue), rules)
    sink = incident_sink(intake, index=index)
    app = create_app(auth, counted(sink), max_body=settings.alertmanager.max_body_bytes)
    return guard(app, webhook_door(settings.alertmanager))


def counted(sink: AnomalySink) -> AnomalySink:
    """The sink, counting the alerts it takes (aiops_alerts_received, aiops_anomalies)."""

    async def counting(anomalies: list[Anomaly]) -> None:
        try:
            await sink(anomalies)
        except SinkUnavailableError:
            metrics.ALERTS_RECEIVED.labels("refused").inc(len(anomalies))
            raise
        metrics.ALERTS_RECEIVED.labels("accepted").inc(len(anomalies))
        for anomaly in anomalies:
            metrics.ANOMALIES.labels(anomaly.signal).inc()

    return counting


async def serve_webhook(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn handles both and drains requests in flight)."""
    cfg = settings.alertmanager
    webhook_auth(cfg)  # refuse an open public receiver before connecting to anything
    load_rules(settings)  # nor start on rules that do not load (RulesError)
    telemetry = ProcessTelemetry.start(settings, "webhook")
    try:
        client = await connect(settings.temporal)
        app = await receiver_app(settings, client, RulesSource.from_settings(settings))
        log.info(
            "alertmanager webhook serving",
            url=webhook_url(cfg),
            task_queue=settings.temporal.task_queue,
            auth="none (loopback)" if not (cfg.tokens or cfg.basic_auth) else "required",
        )
        async with telemetry.beside(client):
            await _serve(app, cfg, telemetry)
    finally:
        telemetry.stop()


async def _serve(app: ASGIApp, cfg: AlertmanagerSettings, telemetry: ProcessTelemetry) -> None:
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=cfg.host, port=cfg.port, log_level="warning", lifespan="off", log_config=None
        )
    )
    adopt_library_loggers()
    telemetry.health.add_check("listening", lambda: None if server.started else "not listening yet")
    telemetry.serving.set()
    await server.serve()
