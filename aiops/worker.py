"""The composition root: builds the activities with their dependencies and runs the worker."""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes.config.config_exception import ConfigException
from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.detection import DetectionActivities
from aiops.activities.incident import AgentInvestigator, IncidentActivities
from aiops.activities.intake import IntakeActivities
from aiops.activities.kill_switch import KillSwitchActivities
from aiops.activities.notify import NotifyActivities
from aiops.agent.graph import AgentConfig, AgentDeps
from aiops.approvals.slack.blocks import temporal_ui_link
from aiops.approvals.slack.notifier import notifier_from_settings
from aiops.config import ConfigError, Settings
from aiops.detect.catalog import build_catalog
from aiops.incidents.client import IncidentClient
from aiops.incidents.history import TemporalHistory
from aiops.incidents.intake import AnomalyIntake, start_detection_loop
from aiops.incidents.rules import RulesError, RulesSource, load_rules
from aiops.integrations.discovery import ProfileDiscovery
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.kubernetes.readers import KubernetesReader
from aiops.integrations.llm import OpenAiChat
from aiops.integrations.prometheus import Prometheus
from aiops.integrations.redact import Redactor
from aiops.integrations.temporal import connect
from aiops.logs import get_logger
from aiops.policy import policy_version
from aiops.telemetry.llm import MeteredChat
from aiops.telemetry.process import ProcessTelemetry
from workflows import ALL_WORKFLOWS

log = get_logger(__name__)


class StartupError(Exception):
    """The daemon must not start; the message lists what to fix."""


def build_activities(
    settings: Settings,
    client: Client,
    prometheus: Prometheus,
    discovery: ProfileDiscovery | None = None,
) -> IncidentActivities:
    """The activities with their real dependencies, from settings."""
    kube = settings.kubernetes
    executor: KubernetesExecutor | None = None
    reader: KubernetesReader | None = None
    if (
        kube.in_cluster
        or kube.kubeconfig is not None
        or Path("~/.kube/config").expanduser().exists()
    ):
        try:
            executor = (
                KubernetesExecutor.in_cluster(request_timeout_s=kube.request_timeout_s)
                if kube.in_cluster
                else KubernetesExecutor.from_kubeconfig(
                    str(kube.kubeconfig) if kube.kubeconfig else None,
                    kube.context,
                    request_timeout_s=kube.request_timeout_s,
                )
            )
        except (ConfigException, OSError) as exc:
            # Found by the reliability tests: a wrong kubeconfig path crashed the worker with a
            # traceback from deep inside the kubernetes client.
            where = (
                "in-cluster config"
                if kube.in_cluster
                else f"kubeconfig {kube.kubeconfig or '~/.kube/config'}"
            )
            raise StartupError(
                f"refusing to start: the {where} is not usable ({exc}); set "
                "AIOPS_KUBERNETES__KUBECONFIG to a readable kubeconfig (and "
                "AIOPS_KUBERNETES__CONTEXT to one of its contexts)"
            ) from exc
        reader = KubernetesReader(executor.api_client, timeout_s=kube.request_timeout_s)
    llm = (
        MeteredChat(OpenAiChat(settings.llm), settings.llm.model, settings.telemetry)
        if settings.llm.base_url
        else None
    )
    agent = AgentDeps(
        metrics=prometheus,
        cluster=reader,
        llm=llm,
        config=AgentConfig(token_budget=settings.llm.max_tokens_per_incident),
        signals=discovery.current if discovery is not None else None,
    )
    return IncidentActivities(
        investigator=AgentInvestigator(agent, redactor=Redactor(settings.llm.redact_patterns)),
        executor=executor,
        prometheus=prometheus,
        history=TemporalHistory(client),
        signals=discovery.current if discovery is not None else None,
    )


def build_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    acts = list(activities)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(ALL_WORKFLOWS),
        activities=acts,
        activity_executor=ThreadPoolExecutor(max_workers=16),
        interceptors=list(interceptors),
    )


def all_activities(settings: Settings, client: Client) -> list[Callable[..., Any]]:
    prometheus = Prometheus(settings.prometheus)  # one client (and session) for all activities
    rules = RulesSource.from_settings(settings)  # read again as the files change
    intake = AnomalyIntake(IncidentClient(client, settings.temporal.task_queue), rules)
    # What the cluster's metrics can feed, asked every few minutes, shared by detection,
    # investigation and planning.
    try:
        discovery = ProfileDiscovery(settings.profiles, prometheus)
    except ConfigError as exc:
        raise StartupError(f"refusing to start: {exc}") from exc
    notify = NotifyActivities(
        notifier_from_settings(settings),
        ui_link=functools.partial(
            temporal_ui_link, settings.temporal.ui_url, settings.temporal.namespace
        ),
        metrics=prometheus,
        units={s.name: s.unit for s in build_catalog(settings.detection.signals)},
    )
    return [
        *build_activities(settings, client, prometheus, discovery).all(),
        *notify.all(),
        *DetectionActivities(settings, prometheus, discovery).all(),
        *IntakeActivities(intake).all(),
        *KillSwitchActivities(rules.policy).all(),
    ]


async def run_worker(settings: Settings, *, start_detection: bool = False) -> None:
    try:
        rules = load_rules(settings)  # refuse to start on an invalid policy or playbook
    except RulesError as exc:
        raise StartupError(str(exc)) from exc
    telemetry = ProcessTelemetry.start(settings, "worker")
    try:
        await _serve_worker(settings, rules, telemetry, start_detection=start_detection)
    finally:
        telemetry.stop()


async def _serve_worker(
    settings: Settings, rules: RulesSnapshot, telemetry: ProcessTelemetry, *, start_detection: bool
) -> None:
    client = await connect(settings.temporal)
    log.info(
        "rules loaded", policy=policy_version(rules.policy), playbooks=rules.playbooks.version()
    )
    worker = build_worker(
        client,
        settings.temporal.task_queue,
        all_activities(settings, client),
        telemetry.interceptors(),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker started", address=settings.temporal.address, task_queue=settings.temporal.task_queue
    )
    async with worker, telemetry.beside(client, incidents=True):
        if start_detection:
            await start_detection_loop(
                client, settings.temporal.task_queue, interval_s=settings.detection.interval_s
            )
        telemetry.serving.set()
        await stop.wait()
    log.info("worker stopped")
