"""`aiops slack serve` from settings alone: it connects to Slack and Temporal and handles clicks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import Client

from aiops.activities.contracts import RulesSnapshot
from aiops.activities.notify import NotifyActivities
from aiops.approvals.slack.app import SlackSetupError, serve
from aiops.approvals.slack.blocks import APPROVE
from aiops.config import Settings, SigningSettings, SlackSettings, TemporalSettings
from tests.approvals.slack.conftest import ALICE, SLACK_APP, slack_policy
from tests.approvals.slack.stub import APP_TOKEN, BOT_TOKEN, CHANNEL, SlackStub, click_payload
from tests.approvals.slack.test_slack_approvals import ask
from tests.incident_fixtures import start
from tests.keys import write_key
from tests.servers import MetricsTarget
from workflows import IncidentWorkflow


def settings(
    tmp_path: Path, temporal: Client, slack: SlackStub, key: bool = True, **slack_kw: object
) -> Settings:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "default.yaml").write_text(slack_policy())
    return Settings(
        state_dir=tmp_path / "state",
        policies_dir=tmp_path / "policies",
        temporal=TemporalSettings(address=temporal.service_client.config.target_host),
        slack=SlackSettings(channel=CHANNEL, api_url=slack.api_url, **slack_kw),  # type: ignore[arg-type]
        signing=SigningSettings(
            slack_key=write_key(SLACK_APP, tmp_path / "slack.key") if key else None
        ),
    )


async def test_socket_mode_app_from_settings_decides(
    temporal_client: Client,
    task_queue: str,
    worker: None,
    rules: RulesSnapshot,
    healthy_cart: MetricsTarget,
    slack: SlackStub,
    notify: NotifyActivities,
    tmp_path: Path,
) -> None:
    conf = settings(
        tmp_path,
        temporal_client,
        slack,
        bot_token=SecretStr(BOT_TOKEN),
        app_token=SecretStr(APP_TOKEN),
    )
    stop = asyncio.Event()
    app = asyncio.create_task(serve(conf, stop=stop))
    try:
        await slack.connected()
        handle = await start(
            temporal_client,
            task_queue,
            RulesSnapshot(policy=(await _policy(conf)), playbooks=rules.playbooks),
        )
        msg = await ask(slack, handle)
        await slack.send_envelope("env-serve", click_payload(msg, ALICE, APPROVE))
        assert [d.identity for d in (await handle.result()).decisions] == ["alice"]
        assert await handle.query(IncidentWorkflow.actions) != []
    finally:
        stop.set()
        await asyncio.wait_for(app, 10)
    assert slack.thread(msg.ts), "the approval was acknowledged in the thread"


async def test_missing_settings_are_named(
    tmp_path: Path, temporal_client: Client, slack: SlackStub
) -> None:
    with pytest.raises(SlackSetupError, match="AIOPS_SLACK__BOT_TOKEN"):
        await serve(settings(tmp_path, temporal_client, slack))
    with pytest.raises(SlackSetupError, match="AIOPS_SLACK__APP_TOKEN"):
        await serve(settings(tmp_path, temporal_client, slack, bot_token=SecretStr(BOT_TOKEN)))
    with pytest.raises(SlackSetupError, match="AIOPS_SLACK__SIGNING_SECRET"):
        await serve(
            settings(tmp_path, temporal_client, slack, bot_token=SecretStr(BOT_TOKEN), mode="http")
        )
    tokens = {"bot_token": SecretStr(BOT_TOKEN), "app_token": SecretStr(APP_TOKEN)}
    with pytest.raises(SlackSetupError, match="AIOPS_SIGNING__SLACK_KEY"):
        await serve(settings(tmp_path, temporal_client, slack, key=False, **tokens))


async def _policy(conf: Settings):  # type: ignore[no-untyped-def]
    from aiops.policy.loader import load_policy

    return load_policy(conf.policies_dir)
