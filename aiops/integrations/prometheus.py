"""Prometheus over its HTTP API: every call of the daemon (the detection pass's bulk queries, the
agent's, the MCP tools', doctor's) goes through `Prometheus`, on one requests session.

Queries (instant and range) are POSTed and their answers parsed here with orjson; the series
metadata calls go through prometheus-api-client. The library parses with the standard json module
and hands back dicts the caller copies again: over 100,000 series that costs a detection pass
about half a second more (bench/bench_detect_pass.py, the two side by side).

Queries are POSTed as a form (`_FormSession`), so a long PromQL expression never meets a URL
length limit; each carries Prometheus' own `timeout` so a heavy query frees the server too, and
optionally a `limit` on series and a cap on the bytes read, so a query matching 50,000 series
is refused early instead of parsed whole. Every failure becomes a PrometheusError whose message
names the address, what failed and what to do, so callers can print it as one line.
"""

from __future__ import annotations

import ast
import contextvars
import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from aiops.config import PrometheusSettings

T = TypeVar("T")
_CHUNK = 1 << 20
_FIRST_CHUNK = 4  # steps of a chunked range query's first part (Prometheus.fetch_chunked)
# Points (series x steps) of one part at most: a part's answer parsed is ~150 bytes a point
# before it becomes series, and a cold start runs several at once. Measured on a cold start of
# 100,000 series x 61 steps: peak 1.18 GB with parts up to 4x the last, 1.06 GB with this cap
# (250,000: no lower, within the run-to-run noise).
_PART_POINTS = 500_000
_POOL = 16  # connections kept to Prometheus: fetch_many's threads plus the other callers


class PrometheusError(Exception):
    """Prometheus could not answer; the message is fit to show a person."""


class _TooLargeError(requests.RequestException):
    def __init__(self, limit: int) -> None:
        super().__init__(f"answer larger than {limit} bytes")
        self.limit = limit


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


@dataclass(frozen=True)
class Limits:
    """Per-call bounds for answers a person asked for (the MCP tools)."""

    series: int | None = None  # sent as Prometheus' `limit` (servers before 3.x ignore it)
    max_bytes: int | None = None  # read no more than this; refuse the answer past it
    timeout_s: float | None = None  # evaluation and read timeout, instead of the setting's


_cap: contextvars.ContextVar[int | None] = contextvars.ContextVar("prometheus_cap", default=None)


class _FormSession(requests.Session):
    """The transport under prometheus-api-client: POSTs its parameters as a form body (the
    library puts them in the URL) and stops reading an answer past the caller's byte cap."""

    def request(self, method: str, url: str, **kwargs: Any) -> Any:  # type: ignore[override]
        if str(method).upper() == "POST" and kwargs.get("params") and not kwargs.get("data"):
            kwargs["data"], kwargs["params"] = kwargs["params"], None
        cap = _cap.get()
        # Read the body here in large chunks (requests' own reading takes 10 KiB at a time,
        # which costs a detection pass over 10,000 series tens of milliseconds).
        kwargs["stream"] = True
        response = super().request(method, url, **kwargs)
        body = bytearray()
        for chunk in response.iter_content(_CHUNK):
            body += chunk
            if cap is not None and len(body) > cap:
                response.close()
                raise _TooLargeError(cap)
        response._content = bytes(body)  # what .json() and .content read from now on
        return response


class Prometheus:
    def __init__(self, settings: PrometheusSettings) -> None:
        self.url = settings.url
        self._timeout = settings.timeout_s
        headers = {}
        if settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
        self._session = _FormSession()
        self._session.verify = settings.verify_tls
        self._session.headers.update(headers)
        self._conn = PrometheusConnect(
            url=self.url,
            headers=headers or None,
            disable_ssl=not settings.verify_tls,
            retry=Retry(total=0),
            session=self._session,
            timeout=settings.timeout_s,  # requests takes a float, whatever the hint says
            method="POST",
        )
        # No retries here: callers (activities) retry under Temporal's policy, and doctor must be
        # quick to say "unreachable". Mounted after the library's own adapter, for a larger pool.
        self._session.mount(self.url, HTTPAdapter(max_retries=Retry(total=0), pool_maxsize=_POOL))

    def check(self) -> str:
        """Return the server's version, or raise PrometheusError."""
        path = "/api/v1/status/buildinfo"  # prometheus-api-client has no call for it
        try:
            response = self._session.get(self.url + path, timeout=self._timeout)
        except requests.RequestException as exc:
            raise PrometheusError(self._unreachable(exc)) from exc
        if response.status_code != 200:
            raise PrometheusError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} on {path}; "
                "check AIOPS_PROMETHEUS__URL points at the Prometheus server (not a proxy page)"
            )
        try:
            version = response.json().get("data", {}).get("version", "unknown")
        except ValueError as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer JSON on {path}; "
                "check AIOPS_PROMETHEUS__URL"
            ) from exc
        return str(version)

    def query(self, promql: str, at: datetime | None = None) -> list[Series]:
        """An instant query (now, or at `at`)."""
        params = {"time": _unix(at)} if at is not None else {}
        return self._instant(promql, params, Limits())

    def query_range(
        self, promql: str, start: datetime, end: datetime, step_s: float
    ) -> list[Series]:
        return self.fetch(RangeQuery(promql, start, end, step_s))

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

    # ---- queries --------------------------------------------------------------------------

    def fetch(self, q: RangeQuery, limits: Limits | None = None) -> list[Series]:
        """One instant (start == end) or range query."""
        limits = limits or Limits()
        if q.start == q.end:
            return self._instant(q.promql, {"time": _unix(q.end)}, limits)
        form = {
            "start": _unix(q.start),
            "end": _unix(q.end),
            "step": repr(float(q.step_s)),
        }
        return self._query(
            "/api/v1/query_range",
            q.promql,
            form,
            limits,
            _range_answer,
        )

    def fetch_chunked(self, q: RangeQuery, budget_s: float | None = None) -> list[Series]:
        """A range query as consecutive queries over parts of its time range, newest first,
        the series merged as one query returns them. Prometheus' time grows with series x
        steps (100,000 series x 60 steps: over 30 s on two busy cores) and the series count is
        not known before, so the first part is `_FIRST_CHUNK` steps and each next one is sized
        from the time the last took, to take about a quarter of the timeout, and no more than
        what still fits `budget_s` at the last part's pace: past it the answer covers the
        newest steps only."""
        steps = round((q.end - q.start).total_seconds() / q.step_s) + 1
        per_part = self._timeout / 4
        deadline = math.inf if budget_s is None else time.monotonic() + budget_s
        parts: dict[tuple[tuple[str, str], ...], list[Series]] = {}
        done, size, per_step = 0, _FIRST_CHUNK, 0.0
        while done < steps:
            size = min(size, steps - done)
            if per_step and deadline < math.inf:  # no larger than what still fits the budget
                size = min(size, int((deadline - time.monotonic()) / per_step))
                if size < 1:
                    break
            end = q.end - timedelta(seconds=done * q.step_s)
            start = end - timedelta(seconds=(size - 1) * q.step_s)
            began = time.monotonic()
            got = self.fetch(RangeQuery(q.promql, start, end, q.step_s))
            for s in got:
                parts.setdefault(tuple(sorted(s.labels.items())), []).append(s)
            per_step = (time.monotonic() - began) / size
            done += size
            # At most four times larger: one quick part is a poor estimate.
            size = max(1, min(4 * size, int(per_part / max(per_step, 1e-3))))
            size = max(1, min(size, _PART_POINTS // max(len(got), 1)))
        # Merged part by part, each freed as it goes (a cold start's answers are the largest
        # thing the pass holds); series whose parts share their times share the merged ones.
        merged, times = [], {}
        while parts:
            got = parts.pop(next(iter(parts)))[::-1]
            key = tuple(id(s.timestamps) for s in got)
            if key not in times:
                times[key] = [t for s in got for t in s.timestamps]
            merged.append(Series(got[0].labels, times[key], [v for s in got for v in s.values]))
        return merged

    def fetch_many(
        self,
        queries: Sequence[RangeQuery],
        parallel: int = 4,
        *,
        chunked: bool = False,
        budget_s: float | None = None,
    ) -> list[list[Series] | PrometheusError]:
        """Run queries concurrently (Prometheus evaluates them on several cores); each slot
        holds the series or the error of that query, in order, so one failure spoils nothing
        else. `chunked`: range queries in parts (`fetch_chunked`, within `budget_s` each).
        The same query twice is asked once (signals that share one answer)."""
        if not queries:
            return []
        unique = list(dict.fromkeys(queries))
        if len(unique) < len(queries):
            answers = dict(
                zip(
                    unique,
                    self.fetch_many(unique, parallel, chunked=chunked, budget_s=budget_s),
                    strict=True,
                )
            )
            return [answers[q] for q in queries]

        def one(q: RangeQuery) -> list[Series] | PrometheusError:
            try:
                if chunked and q.start != q.end:
                    return self.fetch_chunked(q, budget_s)
                return self.fetch(q)
            except PrometheusError as exc:
                return exc

        if parallel <= 1 or len(queries) == 1:
            return [one(q) for q in queries]
        with ThreadPoolExecutor(max_workers=min(parallel, len(queries))) as pool:
            return list(pool.map(one, queries))

    def close(self) -> None:
        self._conn.close()

    def _call(self, fn: Callable[[], T], what: str) -> T:
        """Any other call of the library (series metadata, ...), its failures as
        PrometheusErrors like the queries'."""
        with self._bounded(what, Limits()):
            return fn()

    def _instant(self, promql: str, params: dict[str, str], limits: Limits) -> list[Series]:
        def series(data: dict[str, Any]) -> list[Series]:
            if data.get("resultType") in ("scalar", "string"):  # [ts, "value"]
                return [_instant_series({"metric": {}, "value": data["result"]})]
            return [_instant_series(item) for item in _vector(data)]

        return self._query("/api/v1/query", promql, params, limits, series)

    def _query(
        self,
        path: str,
        promql: str,
        params: dict[str, str],
        limits: Limits,
        series: Callable[[dict[str, Any]], list[Series]],
    ) -> list[Series]:
        """POST one query and read its `data` into series, or raise a PrometheusError naming
        the query (an answer of another shape too)."""
        timeout = limits.timeout_s or self._timeout
        with self._bounded(promql, limits) as extra:
            response = self._session.post(
                self.url + path, data={"query": promql} | params | extra, timeout=timeout
            )
            if response.status_code != 200:
                raise PrometheusError(
                    f"Prometheus at {self.url} refused the query {promql!r}: "
                    f"{_refusal(response.status_code, response.content)}"
                )
            body = orjson.loads(response.content)
            if body.get("status") != "success":
                raise PrometheusError(
                    f"Prometheus at {self.url} refused the query {promql!r}: "
                    f"{body.get('errorType', 'error')}: {body.get('error', 'no reason given')}"
                )
            return series(body["data"])

    @contextmanager
    def _bounded(self, promql: str, limits: Limits) -> Iterator[dict[str, str]]:
        """The bounds as query parameters, and every failure as a PrometheusError."""
        timeout = limits.timeout_s or self._timeout
        # Prometheus stops evaluating at its own timeout too, so a heavy query frees the server.
        extra = {"timeout": f"{timeout:g}s"}
        if limits.series is not None:
            extra["limit"] = str(limits.series)
        token = _cap.set(limits.max_bytes)
        try:
            yield extra
        except _TooLargeError as exc:
            raise PrometheusError(
                f"the answer to {promql!r} is larger than {exc.limit // 1024} KiB; aggregate "
                "(sum by, topk) or narrow the selector"
            ) from exc
        except requests.Timeout as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer within {timeout:g}s for "
                f"{promql!r}; raise AIOPS_PROMETHEUS__TIMEOUT_S or lighten the query"
            ) from exc
        except PrometheusApiClientException as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} refused the query {promql!r}: {_library_refusal(exc)}"
            ) from exc
        except (
            requests.exceptions.InvalidJSONError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,  # JSON of another shape: a list where an object belongs
        ) as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer JSON for {promql!r}; check "
                "AIOPS_PROMETHEUS__URL points at the Prometheus server"
            ) from exc
        except requests.RequestException as exc:
            raise PrometheusError(self._unreachable(exc)) from exc
        finally:
            _cap.reset(token)

    def _unreachable(self, exc: Exception) -> str:
        kind = type(exc).__name__
        return (
            f"Prometheus at {self.url} is unreachable ({kind}); start it or set "
            "AIOPS_PROMETHEUS__URL to its address"
        )


def _refusal(status: int, content: bytes) -> str:
    """Prometheus' errorType and error from an answer other than 200, or its first bytes."""
    try:
        body = orjson.loads(content)
        kind = body.get("errorType", status)
        why = f"{kind}: {body.get('error', 'no reason given')}"
        if kind == "timeout":  # Prometheus' own evaluation timeout (the `timeout` we send)
            why += "; raise AIOPS_PROMETHEUS__TIMEOUT_S or lighten the query"
        return why
    except (ValueError, AttributeError):
        text = content[:300].decode(errors="replace")
        return (
            f"HTTP {status} ({text}); check AIOPS_PROMETHEUS__URL points at the Prometheus server"
        )


def _library_refusal(exc: PrometheusApiClientException) -> str:
    """The refusal in prometheus-api-client's "HTTP Status Code N (b'...')"."""
    text = str(exc)
    head, _, rest = text.partition(" (")
    try:
        content = ast.literal_eval(rest.removesuffix(")"))
        return _refusal(int(head.rsplit(" ", 1)[-1]), content)
    except (ValueError, SyntaxError, TypeError):
        return text[:300]


def _vector(data: dict[str, Any]) -> list[dict[str, Any]]:
    result = data["result"]
    if not isinstance(result, list):
        raise TypeError(f"the result is {type(result).__name__}, not a list")
    return result


def _unix(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"time {at.isoformat()} has no timezone; pass an aware UTC datetime")
    return f"{at.timestamp():.3f}"


def _number(raw: object) -> float:
    try:
        return float(raw)  # type: ignore[arg-type]  # strings as Prometheus sends them
    except (ValueError, TypeError):
        return math.nan


def _instant_series(item: dict[str, Any]) -> Series:
    ts, raw = item.get("value", [math.nan, "NaN"])
    # Labels as parsed: a fresh dict per answer, no need to copy it.
    return Series(labels=item.get("metric", {}), timestamps=[float(ts)], values=[_number(raw)])


def _range_answer(data: dict[str, Any]) -> list[Series]:
    """A range answer's series; those at the same times share one list of them (the series of
    an answer mostly do: at 100,000 series x 60 steps that is ~200 MB not held twice)."""
    out, last = [], None
    for item in _vector(data):
        points = item.get("values", [])
        times = [float(ts) for ts, _ in points]
        if times == last:
            times = last
        last = times
        out.append(Series(item.get("metric", {}), times, [_number(v) for _, v in points]))
    return out
