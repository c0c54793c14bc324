"""Prometheus over its HTTP API, through prometheus-api-client.

Every failure becomes a PrometheusError whose message names the address, what failed and what to
do, so callers can print it as one line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from aiops.config import PrometheusSettings


class PrometheusError(Exception):
    """Prometheus could not answer; the message is fit to show a person."""


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    timestamps: list[float]
    values: list[float]  # NaN where Prometheus returned NaN or a non-number


class Prometheus:
    def __init__(self, settings: PrometheusSettings) -> None:
        self.url = settings.url
        headers = {}
        if settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
        self._timeout = settings.timeout_s
        # No retries here: callers (activities) retry under Temporal's policy, and doctor must be
        # quick to say "unreachable".
        self._conn = PrometheusConnect(
            url=self.url,
            headers=headers or None,
            disable_ssl=not settings.verify_tls,
            retry=Retry(total=0),
            timeout=math.ceil(settings.timeout_s),
        )

    def check(self) -> str:
        """Return the server's version, or raise PrometheusError."""
        data = self._get_json("/api/v1/status/buildinfo")
        version = data.get("data", {}).get("version", "unknown")
        return str(version)

    def query(self, promql: str, at: datetime | None = None) -> list[Series]:
        params = {"time": str(at.timestamp())} if at is not None else None
        result: Any = self._call(lambda: self._conn.custom_query(promql, params=params), promql)
        if result and not isinstance(result[0], dict):  # a scalar: [ts, "value"]
            return [_instant_series({"metric": {}, "value": result})]
        return [_instant_series(item) for item in result]

    def query_range(
        self, promql: str, start: datetime, end: datetime, step_s: float
    ) -> list[Series]:
        result = self._call(
            lambda: self._conn.custom_query_range(
                promql, start_time=start, end_time=end, step=f"{step_s:g}s"
            ),
            promql,
        )
        return [_range_series(item) for item in result]

    def _get_json(self, path: str) -> dict[str, Any]:
        try:
            response = self._conn._session.get(  # the client has no buildinfo call
                self.url + path, timeout=self._timeout, headers=self._conn.headers,
                verify=self._conn._session.verify,
            )
        except requests.RequestException as exc:
            raise PrometheusError(self._unreachable(exc)) from exc
        if response.status_code != 200:
            raise PrometheusError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} on {path}; "
                "check AIOPS_PROMETHEUS__URL points at the Prometheus server (not a proxy page)"
            )
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer JSON on {path}; "
                "check AIOPS_PROMETHEUS__URL"
            ) from exc
        return body

    def _call(self, fn: Any, promql: str) -> list[dict[str, Any]]:
        try:
            result: list[dict[str, Any]] = fn()
        except requests.RequestException as exc:
            raise PrometheusError(self._unreachable(exc)) from exc
        except PrometheusApiClientException as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} refused the query {promql!r}: {exc}"
            ) from exc
        return result

    def _unreachable(self, exc: Exception) -> str:
        kind = type(exc).__name__
        return (
            f"Prometheus at {self.url} is unreachable ({kind}); start it or set "
            "AIOPS_PROMETHEUS__URL to its address"
        )


def _number(raw: object) -> float:
    try:
        return float(str(raw))
    except ValueError:
        return math.nan


def _instant_series(item: dict[str, Any]) -> Series:
    ts, raw = item.get("value", [math.nan, "NaN"])
    return Series(labels=dict(item.get("metric", {})), timestamps=[float(ts)],
                  values=[_number(raw)])


def _range_series(item: dict[str, Any]) -> Series:
    points = item.get("values", [])
    return Series(
        labels=dict(item.get("metric", {})),
        timestamps=[float(ts) for ts, _ in points],
        values=[_number(v) for _, v in points],
    )
