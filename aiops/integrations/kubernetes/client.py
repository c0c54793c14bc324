"""The executor's connection to the API server: one ApiClient, a timeout on every request that
fits the activity the call runs in, typed errors, and the one place a mutation becomes a
server-side dry run and its result a human-readable diff.

Why the timeouts: the client's default is none, so a black-holed API server held an activity
thread forever (the worker has 16) while Temporal retried the step on the next one. Every call
here is bounded by `request_timeout_s` and by the activity's deadline, whichever comes first, and
urllib3 retries nothing that may have reached the server (Temporal retries the whole step, which
is idempotent).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from typing import Any, Self, TypeVar

import kubernetes.client as k8s
import kubernetes.config
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from urllib3.util.retry import Retry

from aiops.domain import StepResult
from aiops.integrations.kubernetes.diff import FieldChange, render
from aiops.integrations.kubernetes.errors import (
    ConflictError,
    OutOfTimeError,
    api_error,
    unreachable,
)

T = TypeVar("T")
Obj = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"

REQUEST_TIMEOUT_S = 10.0
# A request is not started with less time than this before the deadline: the API server answers
# in milliseconds when it is well, and a call that cannot finish is better reported than raced.
MIN_REQUEST_S = 0.5
# Only a connection that was never made is retried by urllib3: anything that may have reached the
# server is left to Temporal's retry of the whole (idempotent) step.
NO_REPLAYED_REQUESTS = Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)


def api_client(configuration: k8s.Configuration) -> k8s.ApiClient:
    configuration.retries = NO_REPLAYED_REQUESTS
    return k8s.ApiClient(configuration)


def kubeconfig_api_client(path: str | None = None, context: str | None = None) -> k8s.ApiClient:
    """From a kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."""
    configuration = k8s.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=path, context=context, client_configuration=configuration
    )
    return api_client(configuration)


def in_cluster_api_client() -> k8s.ApiClient:
    """From the pod's service account (when aiops runs inside the cluster)."""
    configuration = k8s.Configuration()
    kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
        client_configuration=configuration
    )
    return api_client(configuration)


class KubeClient:
    """The plumbing every action shares. `deadline` is a `monotonic()` instant by which every
    call must be over (the activity's own time limit); `on_wait` gets a progress line whenever an
    action waits (pass a Temporal activity's heartbeat so that long drains are not timed out)."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        field_manager: str = "aiops",
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        deadline: float | None = None,
        drain_timeout_s: float = 120.0,
        poll_interval_s: float = 0.5,
        conflict_retries: int = 5,
        protected_namespaces: Iterable[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.api_client = api_client
        self.core = k8s.CoreV1Api(api_client)
        self.apps = k8s.AppsV1Api(api_client)
        self.field_manager = field_manager
        self.request_timeout_s = request_timeout_s
        self.deadline = deadline
        self.drain_timeout_s = drain_timeout_s
        self.poll_interval_s = poll_interval_s
        self.conflict_retries = conflict_retries
        # None: the built-in protected namespaces (see nodes.py); the workflow passes its policy's.
        self.protected_namespaces = (
            None if protected_namespaces is None else tuple(protected_namespaces)
        )
        self._sleep = sleep
        self._monotonic = monotonic
        self.on_wait = on_wait

    def bound(
        self,
        *,
        deadline: float | None = None,
        on_wait: Callable[[str], None] | None = None,
        protected_namespaces: Iterable[str] | None = None,
        request_timeout_s: float | None = None,
    ) -> Self:
        """This executor (same client and settings) for one activity: its deadline, its
        heartbeat, its policy's protected namespaces and a request timeout that fits it."""
        bound = copy.copy(self)
        bound.deadline = deadline
        bound.on_wait = on_wait
        if protected_namespaces is not None:
            bound.protected_namespaces = tuple(protected_namespaces)
        if request_timeout_s is not None:
            bound.request_timeout_s = request_timeout_s
        return bound

    # ------------------------------------------------------------------ calls

    def _time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - self._monotonic()

    def _request_timeout(self, action: str, target: str) -> float:
        left = self._time_left()
        if left is None:
            return self.request_timeout_s
        if left < MIN_REQUEST_S:
            raise OutOfTimeError(
                action,
                target,
                "the activity ran out of time before its next Kubernetes call; the step is "
                "retried from the start (what already ran is not repeated)",
            )
        return min(self.request_timeout_s, left)

    def _request(
        self, action: str, target: str, method: Callable[..., T], *args: Any, **kw: Any
    ) -> T:
        """One API call with a timeout; transport failures become KubeUnavailableError, API
        refusals stay ApiException (for callers that read the status themselves)."""
        timeout = self._request_timeout(action, target)
        try:
            return method(*args, _request_timeout=timeout, **kw)
        except ApiException:
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unreachable(action, target, exc) from exc

    def _call(self, action: str, target: str, method: Callable[..., T], *args: Any, **kw: Any) -> T:
        """One API call; every failure becomes a typed error with an actionable message."""
        try:
            return self._request(action, target, method, *args, **kw)
        except ApiException as exc:
            raise api_error(action, target, exc) from exc

    def _write(
        self,
        action: str,
        target: str,
        dry_run: bool,
        method: Callable[..., T],
        *args: Any,
        **kw: Any,
    ) -> T:
        """One mutation: with `dry_run` the API server runs it without persisting (dryRun=All)
        and answers with the object as it would be."""
        if dry_run:
            kw["dry_run"] = "All"
        return self._call(action, target, method, *args, field_manager=self.field_manager, **kw)

    def _dict(self, model: Any) -> Obj:
        data = self.api_client.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
        return data if isinstance(data, dict) else {}

    def _with_conflict_retry(self, action: str, target: str, attempt: Callable[[], T]) -> T:
        for _ in range(self.conflict_retries):
            try:
                return attempt()
            except ConflictError:
                self._sleep(min(self.poll_interval_s, 0.2))
        raise ConflictError(
            action,
            target,
            f"the object kept changing during {self.conflict_retries} attempts; retry the step",
        )

    # ------------------------------------------------------------------ waiting

    def _wait_limit(self, timeout_s: float) -> float:
        """A wait's own limit, cut to the activity's deadline."""
        left = self._time_left()
        return timeout_s if left is None else max(0.0, min(timeout_s, left - MIN_REQUEST_S))

    def _waiting(self, message: str) -> None:
        if self.on_wait is not None:
            self.on_wait(message)

    # ------------------------------------------------------------------ results

    @staticmethod
    def _nothing_to_do(
        action: str, target: str, dry_run: bool, message: str, notes: Iterable[str] = ()
    ) -> StepResult:
        return StepResult(
            action=action,
            target=target,
            ok=True,
            changed=False,
            message=render(message, [], notes),
            dry_run=dry_run,
        )

    @staticmethod
    def _done(
        action: str,
        target: str,
        dry_run: bool,
        what: str,
        changes: Iterable[FieldChange],
        notes: Iterable[str] = (),
        *,
        changed: bool = True,
    ) -> StepResult:
        """What an action did (or, in a dry run, would do), as the diff an approver reads."""
        return StepResult(
            action=action,
            target=target,
            ok=True,
            changed=changed,
            message=render(what + (" (dry run)" if dry_run else ""), changes, notes),
            dry_run=dry_run,
        )
