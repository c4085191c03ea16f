"""The service's one exception type for expected failures, rendered as a short `detail`."""

from __future__ import annotations


class ServiceError(Exception):
    """An expected failure with an HTTP status and a one-sentence message for the caller."""

    def __init__(self, status_code: int, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        # Short machine-readable cause, used as a metric label.
        self.reason = reason
