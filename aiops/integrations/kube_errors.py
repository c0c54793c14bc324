"""Typed errors of the Kubernetes executor, each with a message a person can act on."""

from __future__ import annotations

import json
from typing import Any


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
    """The API server could not be reached."""

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
