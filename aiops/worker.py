"""The composition root: builds the activities with their dependencies and runs the worker."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes.config.config_exception import ConfigException
from temporalio.client import Client
from temporalio.worker import Worker

from aiops.activities.detection import DetectionActivities
from aiops.activities.incident import AgentInvestigator, IncidentActivities
from aiops.activities.intake import IntakeActivities
from aiops.activities.kill_switch import KillSwitchActivities
from aiops.activities.notify import NotifyActivities
from aiops.agent.graph import AgentConfig, AgentDeps
from aiops.approvals.slack.notifier import notifier_from_settings
from aiops.config import Settings
from aiops.incidents.client import IncidentClient
from aiops.incidents.history import TemporalHistory
from aiops.incidents.intake import AnomalyIntake, start_detection_loop
from aiops.incidents.rules import RulesError, RulesSource, load_rules
from aiops.integrations.k8s_read import KubernetesReader
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.llm import OpenAiChat
from aiops.integrations.prometheus import Prometheus
from aiops.integrations.redact import Redactor
from aiops.integrations.temporal import connect
from aiops.logs import get_logger
from aiops.policy import policy_version
from workflows import ALL_WORKFLOWS

log = get_logger(__name__)


class StartupError(Exception):
    """The daemon must not start; the message lists what to fix."""


def build_activities(
    settings: Settings, client: Client, prometheus: Prometheus
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
                KubernetesExecutor.in_cluster()
                if kube.in_cluster
                else KubernetesExecutor.from_kubeconfig(
                    str(kube.kubeconfig) if kube.kubeconfig else None, kube.context
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
        reader = KubernetesReader(executor.api_client)
    llm = OpenAiChat(settings.llm) if settings.llm.base_url else None
    agent = AgentDeps(
        metrics=prometheus,
        cluster=reader,
        llm=llm,
        config=AgentConfig(token_budget=settings.llm.max_tokens_per_incident),
    )
    return IncidentActivities(
        investigator=AgentInvestigator(agent, redactor=Redactor(settings.llm.redact_patterns)),
        executor=executor,
        prometheus=prometheus,
        history=TemporalHistory(client),
    )


def build_worker(
    client: Client, task_queue: str, activities: Sequence[Callable[..., Any]]
) -> Worker:
    acts = list(activities)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(ALL_WORKFLOWS),
        activities=acts,
        activity_executor=ThreadPoolExecutor(max_workers=16),
    )


def all_activities(settings: Settings, client: Client) -> list[Callable[..., Any]]:
    prometheus = Prometheus(settings.prometheus)  # one client (and session) for all activities
    rules = RulesSource.from_settings(settings)  # read again as the files change
    intake = AnomalyIntake(IncidentClient(client, settings.temporal.task_queue), rules)
    notify = NotifyActivities(
        notifier_from_settings(settings),
        ui_url=settings.temporal.ui_url,
        namespace=settings.temporal.namespace,
        metrics=prometheus,
    )
    return [
        *build_activities(settings, client, prometheus).all(),
        *notify.all(),
        *DetectionActivities(settings, prometheus).all(),
        *IntakeActivities(intake).all(),
        *KillSwitchActivities(rules.policy).all(),
    ]


async def run_worker(settings: Settings, *, start_detection: bool = False) -> None:
    try:
        rules = load_rules(settings)  # refuse to start on an invalid policy or playbook
    except RulesError as exc:
        raise StartupError(str(exc)) from exc
    client = await connect(settings.temporal)
    log.info(
        "rules loaded", policy=policy_version(rules.policy), playbooks=rules.playbooks.version()
    )
    worker = build_worker(client, settings.temporal.task_queue, all_activities(settings, client))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker started", address=settings.temporal.address, task_queue=settings.temporal.task_queue
    )
    async with worker:
        if start_detection:
            await start_detection_loop(
                client, settings.temporal.task_queue, interval_s=settings.detection.interval_s
            )
        await stop.wait()
    log.info("worker stopped")
