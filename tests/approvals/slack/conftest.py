"""Fixtures: the loopback Slack, a worker running incidents, and a policy with Slack users."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.incident import IncidentActivities
from aiops.activities.kill_switch import KillSwitchActivities
from aiops.activities.notify import NotifyActivities
from aiops.approvals.slack.blocks import temporal_ui_link
from aiops.approvals.slack.notifier import MessageStore, SlackNotifier, web_client
from aiops.config import PrometheusSettings
from aiops.integrations.kubernetes import KubernetesExecutor
from aiops.integrations.prometheus import Prometheus
from aiops.policy.loader import parse_policy
from aiops.policy.models import Policy
from aiops.worker import build_worker
from tests.approvals.slack.stub import BOT_TOKEN, CHANNEL, SlackStub
from tests.incident_fixtures import FixedInvestigator, policy_yaml
from tests.servers import PrometheusServer

ALICE, BOB, CAROL, STRANGER = "U0ALICE", "U0BOB", "U0CAROL", "U0STRANGER"


SLACK_APP = "slack-app"  # the front door's name; its key is tests.keys.signer(SLACK_APP)


def slack_policy(**kwargs: object) -> str:
    """The incident tests' policy, with Slack users and the Slack app as a trusted front door:
    alice and bob approve, carol is known to the policy but is no approver, and nobody maps
    U0STRANGER."""
    names = {"alice": {"slack": [ALICE]}, "bob": {"slack": [BOB]}, "carol": {"slack": [CAROL]}}
    return policy_yaml(names=names, doors={SLACK_APP: "slack"}, **kwargs)  # type: ignore[arg-type]


def slack_rules(rules: RulesSnapshot, **kwargs: object) -> RulesSnapshot:
    return RulesSnapshot(policy=parse_policy(slack_policy(**kwargs)), playbooks=rules.playbooks)


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
    switch = KillSwitchActivities(lambda: Policy())
    async with build_worker(
        temporal_client, task_queue, [*activities.all(), *notify.all(), *switch.all()]
    ):
        yield
