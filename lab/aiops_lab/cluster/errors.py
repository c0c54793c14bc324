"""API errors of the lab cluster, shaped like the apiserver's `Status` objects."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the Kubernetes API would answer with; `status()` is the body it sends."""

    code = 500
    reason = "Internal"

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        name: str | None = None,
        group: str | None = None,
        causes: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name
        self.group = group
        self.causes = causes or []

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        if details:
            body["details"] = details
        return body


class BadRequestError(ApiError):
    code = 400
    reason = "BadRequest"


class NotFoundError(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowedError(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExistsError(ApiError):
    code = 409
    reason = "AlreadyExists"


class ConflictError(ApiError):
    code = 409
    reason = "Conflict"


class UnsupportedMediaTypeError(ApiError):
    code = 415
    reason = "UnsupportedMediaType"


class InvalidError(ApiError):
    code = 422
    reason = "Invalid"


class TooManyRequestsError(ApiError):
    code = 429
    reason = "TooManyRequests"


def not_found(resource: str, name: str, group: str = "") -> NotFoundError:
    qualified = f"{resource}.{group}" if group else resource
    return NotFoundError(f'{qualified} "{name}" not found', kind=resource, name=name, group=group)
