"""Typed errors of the Kubernetes executor, each with a message a person can act on, and the
mapping from the API's refusals and transport failures to them."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException


class KubeActionError(Exception):
    """An action could not be carried out. `retryable` says whether trying again may help."""

    retryable = False

    def __init__(self, action: str, target: str, message: str) -> None:
        super().__init__(f"{action} {target}: {message}")
        self.action = action
        self.target = target
        self.detail = message


class InvalidStepError(KubeActionError):
    """The step's arguments are missing or out of range (a playbook or rendering bug)."""


class TargetNotFoundError(KubeActionError):
    """The object to act on does not exist (wrong name or namespace, or already gone)."""


class ActionRefusedError(KubeActionError):
    """The cluster's state makes the action unsafe or meaningless (paused rollout, unmanaged
    pods on a node to drain, no previous revision to roll back to)."""


class PermissionDeniedError(KubeActionError):
    """The credentials lack the RBAC verb the action needs."""


class ConflictError(KubeActionError):
    """The object kept changing under us (optimistic concurrency) beyond the retry bound."""

    retryable = True


class DrainTimeoutError(KubeActionError):
    """Some pods could not be evicted in time, typically held by a PodDisruptionBudget."""

    retryable = True

    def __init__(self, action: str, target: str, message: str, remaining: list[str]) -> None:
        super().__init__(action, target, message)
        self.remaining = remaining


class KubeApiError(KubeActionError):
    """The API answered with an error not covered above (message from the API's Status)."""

    def __init__(self, action: str, target: str, message: str, status: int) -> None:
        super().__init__(action, target, message)
        self.status = status
        self.retryable = status >= 500 or status == 429


class KubeUnavailableError(KubeActionError):
    """The API server could not be reached, or did not answer within the request timeout."""

    retryable = True


class OutOfTimeError(KubeActionError):
    """The activity's time ran out before the action could finish its calls."""

    retryable = True


def status_message(body: Any) -> str:
    """The `message` of a Kubernetes Status body, or the body itself."""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return body.strip()
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
        return body.strip()
    return str(body)


def status_causes(body: Any) -> str:
    """The causes of a Status (for a 429 eviction: which disruption budget holds the pod)."""
    try:
        parsed = json.loads(body) if isinstance(body, str | bytes) else {}
    except ValueError:
        return ""
    causes = (parsed.get("details") or {}).get("causes") or [] if isinstance(parsed, dict) else []
    return "".join(f" ({c.get('message')})" for c in causes if c.get("message"))


def api_error(action: str, target: str, exc: ApiException) -> KubeActionError:
    """The typed error for an API refusal, with what to do about it."""
    message = status_message(exc.body) if exc.body else (exc.reason or "no details")
    status = int(exc.status or 0)
    if status == 404:
        return TargetNotFoundError(
            action, target, f"not found ({message}); check the name and the namespace"
        )
    if status in (401, 403):
        return PermissionDeniedError(
            action,
            target,
            f"permission denied ({message}); grant the aiops service account the "
            "verb this action needs (see deploy/ RBAC)",
        )
    if status == 409:
        return ConflictError(action, target, f"conflict ({message}); retry the step")
    if status == 422:
        return KubeApiError(action, target, f"rejected as invalid: {message}", status)
    if status == 429:
        return KubeApiError(
            action,
            target,
            f"the API server is throttling requests (429: {message}); retry later",
            status,
        )
    if status >= 500 or status == 0:
        return KubeApiError(
            action, target, f"API server error {status}: {message}; retry later", status
        )
    return KubeApiError(action, target, f"API error {status}: {message}", status)


def unreachable(action: str, target: str, exc: BaseException) -> KubeUnavailableError:
    """The API server did not answer (refused, reset, or silent past the request timeout)."""
    return KubeUnavailableError(
        action,
        target,
        f"cannot reach the Kubernetes API ({type(exc).__name__}: {exc}); check the kubeconfig's "
        "server address and that the API server is up, then retry",
    )
