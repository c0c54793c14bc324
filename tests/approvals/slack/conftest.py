"""Fixtures: the loopback Slack, a worker running incidents, and a policy with Slack users."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from aiops.activities.incident import IncidentActivities
from aiops.activities.notify import NotifyActivities
from aiops.approvals.slack.blocks import temporal_ui_link
from aiops.approvals.slack.notifier import MessageStore, SlackNotifier, web_client
from aiops.config import PrometheusSettings
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.prometheus import Prometheus
from aiops.policy.loader import parse_policy
from aiops.worker import Rules, build_worker
from tests.approvals.slack.stub import BOT_TOKEN, CHANNEL, SlackStub
from tests.incident_fixtures import FixedInvestigator, policy_yaml
from tests.servers import PrometheusServer

ALICE, BOB, CAROL, STRANGER = "U0ALICE", "U0BOB", "U0CAROL", "U0STRANGER"


def slack_policy(**kwargs: object) -> str:
    """The incident tests' policy, with Slack users: alice and bob approve, carol is known to
    the policy but is no approver, and nobody maps U0STRANGER."""
    text = policy_yaml(**kwargs)  # type: ignore[arg-type]
    return (
        text.replace("alice: {cli: [alice]}", f"alice: {{cli: [alice], slack: [{ALICE}]}}").replace(
            "bob: {cli: [bob]}", f"bob: {{cli: [bob], slack: [{BOB}]}}"
        )
        + f"    carol: {{slack: [{CAROL}]}}\n"
    )


def slack_rules(rules: Rules, **kwargs: object) -> Rules:
    return Rules(policy=parse_policy(slack_policy(**kwargs)), playbooks=rules.playbooks)


@pytest.fixture
async def slack() -> AsyncIterator[SlackStub]:
    stub = SlackStub()
    await stub.start()
    try:
        yield stub
    finally:
        await stub.stop()


@pytest.fixture
def web(slack: SlackStub) -> AsyncWebClient:
    return web_client(BOT_TOKEN, slack.api_url)  # as the worker builds it: with retry handlers


@pytest.fixture
def notify(web: AsyncWebClient, tmp_path: Path) -> NotifyActivities:
    notifier = SlackNotifier(web, CHANNEL, MessageStore(tmp_path / "state" / "slack"))
    link = functools.partial(temporal_ui_link, "http://127.0.0.1:8233", "default")
    return NotifyActivities(notifier, ui_link=link)


@pytest.fixture
async def worker(
    temporal_client: Client,
    task_queue: str,
    executor: KubernetesExecutor,
    prometheus: PrometheusServer,
    notify: NotifyActivities,
) -> AsyncIterator[None]:
    """A worker whose incidents post to the Slack stub themselves, as in production."""
    activities = IncidentActivities(
        investigator=FixedInvestigator(),
        executor=executor,
        prometheus=Prometheus(PrometheusSettings(url=prometheus.url)),
        verify_poll_s=0.5,
    )
    async with build_worker(temporal_client, task_queue, [*activities.all(), *notify.all()]):
        yield
