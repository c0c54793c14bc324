"""Prometheus over its HTTP API: prometheus-api-client for single queries, httpx for the
detection pass's bulk path (`fetch`, `fetch_many`: POSTed queries, several at once).

Every failure becomes a PrometheusError whose message names the address, what failed and what to
do, so callers can print it as one line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
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


@dataclass(frozen=True)
class RangeQuery:
    """One query of a bulk fetch: instant when start == end, else a range at `step_s`."""

    promql: str
    start: datetime
    end: datetime
    step_s: float


class Prometheus:
    def __init__(self, settings: PrometheusSettings) -> None:
        self.url = settings.url
        headers = {}
        if settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
        self._timeout = settings.timeout_s
        self._headers = headers
        self._verify = settings.verify_tls
        self._http: httpx.Client | None = None
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

    # ---- series metadata (profile discovery) -------------------------------------------

    def metric_names(self, match: str, start: datetime, end: datetime) -> list[str]:
        """Names of the series matching `match` with samples between start and end."""
        params = {"match[]": match, "start": _unix(start), "end": _unix(end)}
        result = self._call(lambda: self._conn.get_label_values("__name__", params=params), match)
        return [str(n) for n in result]

    def label_names(self, match: str, start: datetime, end: datetime) -> list[str]:
        """Label names of the series matching `match` with samples between start and end."""
        params = {"match[]": match, "start": _unix(start), "end": _unix(end)}
        result = self._call(lambda: self._conn.get_label_names(params=params), match)
        return [str(n) for n in result]

    # ---- bulk path (detection pass) ---------------------------------------------------

    def fetch(self, q: RangeQuery) -> list[Series]:
        """Run one instant or range query over a pooled HTTP connection (POST: long PromQL)."""
        if q.start == q.end:
            path = "/api/v1/query"
            form = {"query": q.promql, "time": _unix(q.end)}
        else:
            path = "/api/v1/query_range"
            form = {
                "query": q.promql,
                "start": _unix(q.start),
                "end": _unix(q.end),
                "step": repr(float(q.step_s)),
            }
        # Prometheus stops evaluating at its own timeout too, so a heavy query frees the server.
        form["timeout"] = f"{self._timeout:g}s"
        try:
            response = self._client().post(self.url + path, data=form)
        except httpx.TimeoutException as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer within {self._timeout:g}s for "
                f"{q.promql!r}; raise AIOPS_PROMETHEUS__TIMEOUT_S or lighten the query"
            ) from exc
        except httpx.HTTPError as exc:
            raise PrometheusError(self._unreachable(exc)) from exc
        return self._parse(response, q.promql)

    def fetch_many(
        self, queries: Sequence[RangeQuery], parallel: int = 4
    ) -> list[list[Series] | PrometheusError]:
        """Run queries concurrently (Prometheus evaluates them on several cores); each slot
        holds the series or the error of that query, in order, so one failure spoils nothing
        else."""
        if not queries:
            return []

        def one(q: RangeQuery) -> list[Series] | PrometheusError:
            try:
                return self.fetch(q)
            except PrometheusError as exc:
                return exc

        if parallel <= 1 or len(queries) == 1:
            return [one(q) for q in queries]
        with ThreadPoolExecutor(max_workers=min(parallel, len(queries))) as pool:
            return list(pool.map(one, queries))

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                headers=self._headers,
                verify=self._verify,
                timeout=self._timeout,
                limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
            )
        return self._http

    def _parse(self, response: httpx.Response, promql: str) -> list[Series]:
        try:
            body: dict[str, Any] = json.loads(response.content)
        except ValueError as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} without JSON "
                f"for {promql!r}; check AIOPS_PROMETHEUS__URL points at the Prometheus server"
            ) from exc
        if response.status_code != 200 or body.get("status") != "success":
            kind = body.get("errorType", f"HTTP {response.status_code}")
            raise PrometheusError(
                f"Prometheus at {self.url} refused the query {promql!r}: {kind}: "
                f"{body.get('error', 'no reason given')}"
            )
        data = body.get("data", {})
        result = data.get("result", [])
        rtype = data.get("resultType")
        if rtype == "scalar":
            return [_instant_series({"metric": {}, "value": result})]
        if rtype == "vector":
            return [_instant_series(item) for item in result]
        if rtype == "matrix":
            return [_range_series(item) for item in result]
        raise PrometheusError(
            f"Prometheus at {self.url} answered a {rtype!r} result for {promql!r}; "
            "signals must return an instant vector"
        )

    def _get_json(self, path: str) -> dict[str, Any]:
        try:
            response = self._conn._session.get(  # the client has no buildinfo call
                self.url + path,
                timeout=self._timeout,
                headers=self._conn.headers,
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


def _unix(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"time {at.isoformat()} has no timezone; pass an aware UTC datetime")
    return f"{at.timestamp():.3f}"


def _number(raw: object) -> float:
    try:
        return float(str(raw))
    except ValueError:
        return math.nan


def _instant_series(item: dict[str, Any]) -> Series:
    ts, raw = item.get("value", [math.nan, "NaN"])
    return Series(
        labels=dict(item.get("metric", {})), timestamps=[float(ts)], values=[_number(raw)]
    )


def _range_series(item: dict[str, Any]) -> Series:
    points = item.get("values", [])
    return Series(
        labels=dict(item.get("metric", {})),
        timestamps=[float(ts) for ts, _ in points],
        values=[_number(v) for _, v in points],
    )
