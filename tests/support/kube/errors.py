"""API errors as the API server returns them: a `Status` object with code, reason and message."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An expected API failure, rendered as a `Status` with the HTTP code the server uses."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(message: str) -> ApiError:
    """422: a well-formed request the server refuses (failed JSON Patch, failed validation)."""
    return ApiError(422, "Invalid", message)


def not_found(group_resource: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{group_resource} "{name}" not found', {"name": name})


def conflict(group_resource: str, name: str) -> ApiError:
    """409 on a stale resourceVersion: the optimistic-concurrency answer."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {group_resource} "{name}": '
        "the object has been modified; "
        "please apply your changes to the latest version and try again",
        {"name": name},
    )
