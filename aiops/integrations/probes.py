"""Reachability probes for `aiops doctor`: each returns (ok, one plain line)."""

from __future__ import annotations

from pathlib import Path

import httpx
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.service import RPCError

from aiops.config import (
    KubernetesSettings,
    LlmSettings,
    PrometheusSettings,
    SlackSettings,
    TemporalSettings,
)
from aiops.integrations.prometheus import Prometheus, PrometheusError
from aiops.integrations.temporal import TemporalUnavailableError, connect

Probe = tuple[bool, str]


async def probe_temporal(settings: TemporalSettings) -> Probe:
    try:
        client = await connect(settings, timeout_s=3.0)
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
    except TemporalUnavailableError as exc:
        return False, str(exc)
    except RPCError as exc:
        return False, f"Temporal at {settings.address} answered with an error: {exc.message}"
    return True, f"Temporal at {settings.address} (namespace {settings.namespace}) is reachable"


def probe_prometheus(settings: PrometheusSettings) -> Probe:
    try:
        version = Prometheus(settings.model_copy(update={"timeout_s": 3.0})).check()
    except PrometheusError as exc:
        return False, str(exc)
    return True, f"Prometheus at {settings.url} is reachable (version {version})"


def probe_kubernetes(settings: KubernetesSettings) -> Probe:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    where = (
        "in-cluster service account"
        if settings.in_cluster
        else str(settings.kubeconfig or Path("~/.kube/config"))
    )
    try:
        if settings.in_cluster:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            api_client = client.ApiClient()
        else:
            if settings.kubeconfig is None and not Path("~/.kube/config").expanduser().exists():
                return False, (
                    "Kubernetes is not configured; set AIOPS_KUBERNETES__KUBECONFIG to a "
                    "kubeconfig (the lab prints one), or AIOPS_KUBERNETES__IN_CLUSTER=true"
                )
            api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(settings.kubeconfig) if settings.kubeconfig else None,
                context=settings.context,
            )
        with api_client:
            info = client.VersionApi(api_client).get_code(_request_timeout=3)
    except (ConfigException, OSError) as exc:
        return False, f"Kubernetes config {where} is unusable ({exc}); fix the file or the path"
    except Exception as exc:
        host = getattr(getattr(api_client, "configuration", None), "host", where)
        return False, (
            f"Kubernetes API at {host} is unreachable ({type(exc).__name__}); check the "
            "kubeconfig's server address and credentials"
        )
    return True, f"Kubernetes API ({where}) is reachable (version {info.git_version})"


def probe_llm(settings: LlmSettings) -> Probe:
    if not settings.base_url:
        return True, (
            "LLM not configured (optional: investigations stay deterministic); set "
            "AIOPS_LLM__BASE_URL to an OpenAI-compatible endpoint to add one"
        )
    headers = {}
    if settings.api_key is not None:
        headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
    url = settings.base_url.rstrip("/") + "/models"
    try:
        response = httpx.get(url, headers=headers, timeout=3)
    except httpx.HTTPError as exc:
        return False, (
            f"LLM endpoint {settings.base_url} is unreachable ({type(exc).__name__}); start it "
            "or fix AIOPS_LLM__BASE_URL"
        )
    if response.status_code in (401, 403):
        return False, f"LLM endpoint {settings.base_url} refused the key; fix AIOPS_LLM__API_KEY"
    if response.status_code != 200:
        return False, (
            f"LLM endpoint {settings.base_url} answered HTTP {response.status_code} on /models; "
            "is it OpenAI-compatible (…/v1)?"
        )
    return True, f"LLM endpoint {settings.base_url} is reachable (model {settings.model})"


def probe_slack(settings: SlackSettings) -> Probe:
    if settings.bot_token is None:
        return True, (
            "Slack not configured (optional: approve from the CLI or MCP); set "
            "AIOPS_SLACK__BOT_TOKEN and AIOPS_SLACK__CHANNEL to approve in Slack"
        )
    base = (settings.api_url or "https://slack.com/api/").rstrip("/")
    try:
        response = httpx.post(
            base + "/auth.test",
            headers={"Authorization": f"Bearer {settings.bot_token.get_secret_value()}"},
            timeout=3,
        )
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return False, f"Slack API at {base} is unreachable ({type(exc).__name__}); check egress"
    if not body.get("ok"):
        error = body.get("error")
        return False, f"Slack refused the bot token ({error}); fix AIOPS_SLACK__BOT_TOKEN"
    if not settings.channel:
        return False, "Slack token works but no channel is set; set AIOPS_SLACK__CHANNEL"
    return True, f"Slack token works (team {body.get('team')}), channel {settings.channel}"
